counter = 0
request = function()
  counter = counter + 1
  local body = string.format('{"title":"Post %d %d","description":"A body of some words for the benchmark post number %d","tags":["t%d","t%d","rust"]}', counter, math.random(1000000), counter, math.random(50), math.random(500))
  return wrk.format("POST", "/posts", {["Content-Type"]="application/json", ["Authorization"]="Bearer bench-key"}, body)
end
