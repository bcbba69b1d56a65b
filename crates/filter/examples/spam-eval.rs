//! Trains Tern's classifier on one part of a labelled corpus and tests it on another.
//!
//! Usage: `spam-eval <split-dir>` where the directory holds `train/spam`, `train/ham`, `test/spam`
//! and `test/ham`, one message file each (as `scripts/spam-eval.sh` writes them). Prints one
//! Markdown table row per decision rule, and one `<class> <file> <p> <score>` line per test message
//! to `<split-dir>/tern-results.txt`.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use tern_filter::{MemoryClassifier, SpamClass};

/// The defaults of `[filter]` (see tern-common `FilterConfig`).
const BAYES_WEIGHT: f64 = 5.25;
const JUNK_THRESHOLD: f64 = 5.0;

fn files(dir: &Path) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    out.sort();
    out
}

fn main() {
    let Some(root) = std::env::args().nth(1).map(PathBuf::from) else {
        eprintln!("usage: spam-eval <split-dir>");
        std::process::exit(2);
    };
    let mut classifier = MemoryClassifier::new(20);
    for (dir, class) in [
        ("train/spam", SpamClass::Spam),
        ("train/ham", SpamClass::Ham),
    ] {
        for f in files(&root.join(dir)) {
            let raw = std::fs::read(&f).unwrap_or_default();
            classifier.learn(&raw, class);
        }
    }
    let trained = classifier.messages();
    // (messages, caught by bayes p ≥ 0.5, by p ≥ 0.976 alone, by full score ≥ junk threshold)
    let mut spam = [0usize; 4];
    let mut ham = [0usize; 4];
    let mut lines = String::new();
    let domains = vec!["example.com".to_owned()];
    for (dir, class, counts) in [
        ("test/spam", "spam", &mut spam),
        ("test/ham", "ham", &mut ham),
    ] {
        for f in files(&root.join(dir)) {
            let raw = std::fs::read(&f).unwrap_or_default();
            let p = classifier.spam_probability(&raw).unwrap_or(0.5);
            let score = classifier
                .score(&raw, BAYES_WEIGHT, "mx.example.com", &domains)
                .unwrap_or(0.0);
            counts[0] += 1;
            counts[1] += usize::from(p >= 0.5);
            counts[2] += usize::from(BAYES_WEIGHT * (2.0 * p - 1.0) >= JUNK_THRESHOLD);
            counts[3] += usize::from(score >= JUNK_THRESHOLD);
            let _ = writeln!(lines, "{class} {} {p:.6} {score:.2}", f.display());
        }
    }
    let _ = std::fs::write(root.join("tern-results.txt"), lines);
    println!(
        "trained on {} spam + {} ham; tested on {} spam + {} ham",
        trained.spam, trained.ham, spam[0], ham[0]
    );
    let pct = |n: usize, of: usize| 100.0 * n as f64 / of.max(1) as f64;
    for (i, name) in [
        (1, "Tern classifier, p ≥ 0.5"),
        (2, "Tern classifier alone at the junk threshold (p ≥ 0.976)"),
        (3, "Tern full score (rules + classifier) ≥ 5.0 (Junk)"),
    ] {
        let correct = spam[i] + (ham[0] - ham[i]);
        println!(
            "| {name} | {:.2} % | {:.2} % ({} of {}) | {:.2} % ({} of {}) |",
            pct(correct, spam[0] + ham[0]),
            pct(ham[i], ham[0]),
            ham[i],
            ham[0],
            pct(spam[0] - spam[i], spam[0]),
            spam[0] - spam[i],
            spam[0],
        );
    }
}
