//! An in-memory classifier with the same tokenizer, rules and arithmetic as [`crate::Filter`], for
//! offline evaluation (`examples/spam-eval.rs`, `scripts/spam-eval.sh`) and tests. Nothing is
//! persisted.

use std::collections::HashMap;

use mail_parser::MessageParser;
use tern_store::{SpamClass, TokenCounts};

use crate::{bayes_points, classify, rules, token_hashes, tokenize};

/// Token counts in a `HashMap`.
#[derive(Debug, Default, Clone)]
pub struct MemoryClassifier {
    counts: HashMap<u64, TokenCounts>,
    messages: TokenCounts,
    min_messages: u64,
}

impl MemoryClassifier {
    /// An empty classifier that abstains until `min_messages` of each class were learned.
    pub fn new(min_messages: u64) -> MemoryClassifier {
        MemoryClassifier {
            min_messages,
            ..MemoryClassifier::default()
        }
    }

    /// Messages learned so far.
    pub fn messages(&self) -> TokenCounts {
        self.messages
    }

    /// Learns one message; `false` if it has no header fields.
    pub fn learn(&mut self, raw: &[u8], class: SpamClass) -> bool {
        let Some(msg) = MessageParser::default().parse(raw) else {
            return false;
        };
        let analysis = tokenize::analyze(&msg);
        for t in token_hashes(&tokenize::tokens(&msg, &analysis, None)) {
            let c = self.counts.entry(t).or_default();
            match class {
                SpamClass::Spam => c.spam += 1,
                SpamClass::Ham => c.ham += 1,
            }
        }
        match class {
            SpamClass::Spam => self.messages.spam += 1,
            SpamClass::Ham => self.messages.ham += 1,
        }
        true
    }

    /// The classifier's spam probability (`None`: untrained, or no header fields).
    pub fn spam_probability(&self, raw: &[u8]) -> Option<f64> {
        let msg = MessageParser::default().parse(raw)?;
        let analysis = tokenize::analyze(&msg);
        self.probability(&msg, &analysis)
    }

    /// Rules plus classifier points as [`crate::Filter::check`] computes them for MX mail to an
    /// account without its own training, with `hostname`/`domains` as this server's; `None` without
    /// header fields.
    pub fn score(
        &self,
        raw: &[u8],
        bayes_weight: f64,
        hostname: &str,
        domains: &[String],
    ) -> Option<f64> {
        let msg = MessageParser::default().parse(raw)?;
        let analysis = tokenize::analyze(&msg);
        let site = rules::Site { hostname, domains };
        let rule_points: f64 = rules::evaluate(&msg, &analysis, site, true)
            .iter()
            .map(|h| h.points)
            .sum();
        Some(rule_points + bayes_points(self.probability(&msg, &analysis), bayes_weight))
    }

    fn probability(
        &self,
        msg: &mail_parser::Message<'_>,
        analysis: &tokenize::Analysis,
    ) -> Option<f64> {
        let tokens: Vec<TokenCounts> = token_hashes(&tokenize::tokens(msg, analysis, None))
            .iter()
            .map(|t| self.counts.get(t).copied().unwrap_or_default())
            .collect();
        classify::spam_probability(&tokens, self.messages, self.min_messages)
    }
}
