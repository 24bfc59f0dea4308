//! Any JSON as order data: an order that passes the rules renders and builds
//! into a mail without panicking, with no header broken open by its text.
#![no_main]

use blog_actors::event::{Envelope, Event, ORDER_FULFILLED};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(value) = serde_json::from_slice::<serde_json::Value>(data) else { return };
    let Ok(Event::OrderFulfilled(order)) = Envelope::new(ORDER_FULFILLED, value, None).event() else { return };
    let templates = blog_actors::emailer::templates();
    let mail = blog_actors::emailer::render(&templates, &order).expect("a valid order renders");
    let from: lettre::message::Mailbox = "Blog <no-reply@blog.local>".parse().expect("a sender");
    if let Ok(message) = blog::mail::build_message(&from, &mail) {
        let text = String::from_utf8_lossy(&message.formatted()).into_owned();
        let headers = text.split("\r\n\r\n").next().unwrap_or("");
        assert!(headers.lines().all(|l| !l.starts_with("Bcc:")), "{headers}");
    }
});
