//! The spam filter's message analysis (tern-filter: tokenizer, HTML-to-text, URL and
//! attachment extraction, rules, classifier arithmetic) and the clamd reply parser on
//! arbitrary bytes.
//!
//! Scoring and learning run on every message Tern receives, before anything is stored; none of
//! it may panic, and a probability must be a probability.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tern_filter::{MemoryClassifier, SpamClass, TokenScope, parse_reply, training_message};

fuzz_target!(|data: &[u8]| run(data));

const HAM: &[u8] =
    b"From: carol@work.test\r\nSubject: project meeting\r\n\r\nThe report for the meeting.\r\n";

fn run(data: &[u8]) {
    let _ = parse_reply(data);
    let _ = training_message(TokenScope::Global, data, SpamClass::Spam);
    let mut classifier = MemoryClassifier::new(1);
    classifier.learn(HAM, SpamClass::Ham);
    classifier.learn(data, SpamClass::Spam);
    if let Some(p) = classifier.spam_probability(data) {
        assert!((0.0..=1.0).contains(&p), "probability {p}");
    }
    let domains = ["example.test".to_owned()];
    if let Some(score) = classifier.score(data, 5.25, "mx.example.test", &domains) {
        assert!(!score.is_nan(), "score is NaN");
    }
}
