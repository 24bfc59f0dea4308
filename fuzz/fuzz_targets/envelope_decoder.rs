//! Any bytes as a message body: decoding and validating never panic, and an
//! event that passes validation survives a round trip unchanged.
#![no_main]

use blog_actors::event::Envelope;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|body: &[u8]| {
    let Ok(envelope) = Envelope::decode(body) else { return };
    if let Ok(event) = envelope.event() {
        let again = Envelope::decode(&envelope.to_bytes()).expect("an envelope we wrote decodes");
        assert_eq!(again.event().expect("still valid"), event);
    }
});
