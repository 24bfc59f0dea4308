//! The benchmark's quick mode, end to end, once: so the bench cannot rot. It
//! runs every section with tiny sizes against the real binary, RabbitMQ and the
//! MongoDB stand-in, and checks the report it writes (to a temp path) has every
//! section with figures in it. No timing is asserted: on a shared test machine
//! a figure means nothing.

use blog_bench::{Options, Section};

const SECTIONS: [&str; 7] =
    ["0. Bulk load", "1. Events end to end", "2. HTTP", "3. Tag-cloud rebuild", "4. Memory", "5. Startup", "6. MongoDB stand-in"];

#[test]
fn the_quick_benchmark_writes_every_section_with_figures() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("BENCHMARKS.md");
    let mut options = Options::quick(env!("CARGO_BIN_EXE_blog").into(), dir.path().join("work"), out.clone());
    if let Ok(url) = std::env::var("BLOG_TEST_AMQP_URL") {
        options.amqp_url = url;
    }
    if let Ok(url) = std::env::var("BLOG_TEST_MONGO_URL") {
        options.mongo_url = url;
    }
    assert_eq!(options.sections, Section::ALL.to_vec());
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let report = runtime.block_on(blog_bench::run(&options)).unwrap_or_else(|e| panic!("the quick bench failed: {e:#}"));

    let markdown = std::fs::read_to_string(&out).unwrap();
    assert_eq!(markdown, report.markdown());
    for title in ["Machine and versions", "Settings", "Targets", "Where the time goes"].iter().chain(&SECTIONS) {
        assert!(markdown.contains(&format!("\n## {title}\n")), "no section {title:?} in:\n{markdown}");
    }
    for title in SECTIONS {
        let body = section(&markdown, title);
        let lines: Vec<&str> = body.lines().collect();
        // Table rows: not the separator, and not a header (the line above a separator).
        let rows: Vec<&str> = (0..lines.len())
            .filter(|&i| lines[i].starts_with("| ") && !lines.get(i + 1).is_some_and(|next| next.starts_with("|---")))
            .map(|i| lines[i])
            .collect();
        assert!(!rows.is_empty(), "section {title:?} has no table rows:\n{body}");
        for row in rows {
            let numeric = row.split('|').map(str::trim).filter(|cell| figure(cell).is_some()).count();
            assert!(numeric > 0, "a row of {title:?} has no figure: {row}");
            assert!(!row.contains("NaN") && !row.contains("inf"), "a row of {title:?} has a non-figure: {row}");
        }
    }
    for key in ["idle_rss_kb", "startup_ms", "rss_growth", "http_ratio_GET /tags", "events_ratio_rabbit_200"] {
        let value = report.figure(key).unwrap_or_else(|| panic!("no figure {key}"));
        assert!(value.is_finite() && value > 0.0, "{key} = {value}");
    }
}

/// The text of `## title` up to the next section.
fn section<'a>(markdown: &'a str, title: &str) -> &'a str {
    let start = markdown.find(&format!("\n## {title}\n")).expect("the section");
    let rest = &markdown[start + 4..];
    rest.find("\n## ").map_or(rest, |end| &rest[..end])
}

/// A cell holding a number (thousands separators allowed).
fn figure(cell: &str) -> Option<f64> {
    cell.replace(',', "").parse::<f64>().ok().filter(|v| v.is_finite())
}
