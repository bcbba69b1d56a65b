//! Property tests of the store invariants against a model: UIDs strictly increase per mailbox and are
//! never reused, MODSEQ never goes back, a failed job leaves no trace, and blob refcounts equal the number
//! of referencing rows (reaching zero once everything is expunged).

use std::collections::BTreeMap;
use std::time::Duration;

use bytes::Bytes;
use proptest::prelude::*;
use proptest::sample::Index;
use tern_store::{
    BlobId, Delivery, FlagOp, Flags, MailboxId, MessageMeta, ModSeq, NewAccount, Store, StoreError,
    StoreOptions, SystemFlags, Uid,
};

const MAILBOXES: usize = 3;
const INLINE_MAX: usize = 256;

fn contents() -> Vec<Vec<u8>> {
    vec![
        b"small one".to_vec(),
        b"small two".to_vec(),
        vec![7u8; 100],
        vec![9u8; 5000],
    ] // the last is a file
}

#[derive(Debug, Clone)]
enum Op {
    Append {
        mailbox: usize,
        content: usize,
        flags: u8,
    },
    Store {
        mailbox: usize,
        pick: Vec<Index>,
        op: u8,
        flags: u8,
        unchanged_since: Option<Index>,
    },
    Expunge {
        mailbox: usize,
        pick: Option<Vec<Index>>,
    },
    Copy {
        from: usize,
        pick: Vec<Index>,
        to: usize,
    },
    Move {
        from: usize,
        pick: Vec<Index>,
        to: usize,
    },
    FailingDeliver {
        mailbox: usize,
        content: usize,
    },
    FailingStore {
        mailbox: usize,
        pick: Vec<Index>,
    },
}

fn op() -> impl Strategy<Value = Op> {
    let mb = 0..MAILBOXES;
    let pick = prop::collection::vec(any::<Index>(), 0..4);
    prop_oneof![
        4 => (mb.clone(), 0..4usize, 0u8..64).prop_map(|(mailbox, content, flags)| Op::Append { mailbox, content, flags }),
        3 => (mb.clone(), pick.clone(), 0u8..3, 0u8..64, prop::option::of(any::<Index>()))
            .prop_map(|(mailbox, pick, op, flags, unchanged_since)| Op::Store { mailbox, pick, op, flags, unchanged_since }),
        2 => (mb.clone(), prop::option::of(pick.clone())).prop_map(|(mailbox, pick)| Op::Expunge { mailbox, pick }),
        1 => (mb.clone(), pick.clone(), mb.clone()).prop_map(|(from, pick, to)| Op::Copy { from, pick, to }),
        1 => (mb.clone(), pick.clone(), mb.clone()).prop_map(|(from, pick, to)| Op::Move { from, pick, to }),
        1 => (mb.clone(), 0..4usize).prop_map(|(mailbox, content)| Op::FailingDeliver { mailbox, content }),
        1 => (mb, pick).prop_map(|(mailbox, pick)| Op::FailingStore { mailbox, pick }),
    ]
}

fn flags_of(bits: u8) -> Flags {
    let mut f = Flags::from_system(SystemFlags::from_bits_truncate(bits & 31));
    if bits & 32 != 0 {
        f.keywords.insert("$Label1".into());
    }
    f
}

#[derive(Debug, Clone, PartialEq)]
struct Msg {
    flags: Flags,
    content: usize,
    modseq: u64,
}

#[derive(Debug, Clone, Default)]
struct ModelBox {
    uidnext: u32,
    highestmodseq: u64,
    msgs: BTreeMap<u32, Msg>,
}

impl ModelBox {
    fn pick(&self, pick: &[Index]) -> Vec<u32> {
        let uids: Vec<u32> = self.msgs.keys().copied().collect();
        let mut out: Vec<u32> = if uids.is_empty() {
            Vec::new()
        } else {
            pick.iter().map(|i| *i.get(&uids)).collect()
        };
        out.push(self.uidnext + 5); // a UID that does not exist is always ignored
        out
    }

    fn bump(&mut self) -> u64 {
        self.highestmodseq += 1;
        self.highestmodseq
    }
}

fn uids(v: &[u32]) -> Vec<Uid> {
    v.iter().filter_map(|u| Uid::new(*u)).collect()
}

/// Applies `op` to the model and the store; returns whether the operation was expected to fail.
async fn apply(store: &Store, ids: &[MailboxId], model: &mut [ModelBox], op: &Op) -> bool {
    let contents = contents();
    match op {
        Op::Append {
            mailbox,
            content,
            flags,
        } => {
            let m = &mut model[*mailbox];
            let (uid, modseq) = (m.uidnext, m.bump());
            m.uidnext += 1;
            m.msgs.insert(
                uid,
                Msg {
                    flags: flags_of(*flags),
                    content: *content,
                    modseq,
                },
            );
            let bytes = Bytes::from(contents[*content].clone());
            let a = store
                .append(
                    ids[*mailbox],
                    bytes,
                    flags_of(*flags),
                    0,
                    MessageMeta::default(),
                )
                .await
                .expect("append");
            assert_eq!((a.uid.get(), a.modseq), (uid, ModSeq(modseq)));
            false
        }
        Op::Store {
            mailbox,
            pick,
            op,
            flags,
            unchanged_since,
        } => {
            let m = &mut model[*mailbox];
            let picked = m.pick(pick);
            let op = [FlagOp::Add, FlagOp::Remove, FlagOp::Replace][usize::from(*op)];
            let since = unchanged_since.map(|i| i.index(m.highestmodseq as usize + 2) as u64);
            let arg = flags_of(*flags);
            let (mut failed, mut updated, mut modseq) = (Vec::new(), Vec::new(), None);
            let mut sorted = picked.clone();
            sorted.sort_unstable();
            sorted.dedup();
            for uid in sorted {
                let Some(msg) = m.msgs.get(&uid).cloned() else {
                    continue;
                };
                if since.is_some_and(|s| msg.modseq > s) {
                    failed.push(uid);
                    continue;
                }
                let new = msg.flags.apply(op, &arg);
                if new != msg.flags {
                    let ms = match modseq {
                        Some(ms) => ms,
                        None => *modseq.insert(m.bump()),
                    };
                    m.msgs.insert(
                        uid,
                        Msg {
                            flags: new.clone(),
                            modseq: ms,
                            ..msg
                        },
                    );
                    updated.push((uid, new, ms));
                }
            }
            let r = store
                .store_flags(ids[*mailbox], &uids(&picked), op, &arg, since.map(ModSeq))
                .await
                .expect("store");
            assert_eq!(r.failed_unchanged_since, uids(&failed));
            let got: Vec<(u32, Flags, u64)> = r
                .updated
                .into_iter()
                .map(|(u, f, m)| (u.get(), f, m.0))
                .collect();
            assert_eq!(got, updated);
            false
        }
        Op::Expunge { mailbox, pick } => {
            let m = &mut model[*mailbox];
            let candidates: Vec<u32> = match pick {
                Some(p) => m.pick(p),
                None => m.msgs.keys().copied().collect(),
            };
            let mut doomed: Vec<u32> = candidates
                .iter()
                .copied()
                .filter(|u| {
                    m.msgs
                        .get(u)
                        .is_some_and(|x| x.flags.system.contains(SystemFlags::DELETED))
                })
                .collect();
            doomed.sort_unstable();
            doomed.dedup();
            if !doomed.is_empty() {
                m.bump();
                doomed.iter().for_each(|u| {
                    m.msgs.remove(u);
                });
            }
            let restrict = pick.as_ref().map(|_| uids(&candidates));
            let got = store
                .expunge(ids[*mailbox], restrict.as_deref())
                .await
                .expect("expunge");
            assert_eq!(got, uids(&doomed));
            false
        }
        Op::Copy { from, pick, to } | Op::Move { from, pick, to } => {
            let is_move = matches!(op, Op::Move { .. });
            let picked = model[*from].pick(pick);
            let mut src: Vec<u32> = picked
                .iter()
                .copied()
                .filter(|u| model[*from].msgs.contains_key(u))
                .collect();
            src.sort_unstable();
            src.dedup();
            let moving: Vec<(u32, Msg)> = src
                .iter()
                .map(|u| (*u, model[*from].msgs[u].clone()))
                .collect();
            let mut pairs = Vec::new();
            if !moving.is_empty() {
                let dst = &mut model[*to];
                let modseq = dst.bump();
                for (u, msg) in &moving {
                    let new = dst.uidnext;
                    dst.uidnext += 1;
                    dst.msgs.insert(
                        new,
                        Msg {
                            modseq,
                            ..msg.clone()
                        },
                    );
                    pairs.push((*u, new));
                }
                if is_move {
                    let s = &mut model[*from];
                    s.bump();
                    src.iter().for_each(|u| {
                        s.msgs.remove(u);
                    });
                }
            }
            let got = if is_move {
                store
                    .move_messages(ids[*from], &uids(&picked), ids[*to])
                    .await
            } else {
                store.copy(ids[*from], &uids(&picked), ids[*to]).await
            };
            let got: Vec<(u32, u32)> = got
                .expect("copy/move")
                .into_iter()
                .map(|(a, b)| (a.get(), b.get()))
                .collect();
            assert_eq!(got, pairs);
            false
        }
        Op::FailingDeliver { mailbox, content } => {
            let delivery = Delivery {
                bytes: Bytes::from(contents[*content].clone()),
                internal_date: 0,
                meta: MessageMeta::default(),
                targets: vec![
                    (ids[*mailbox], Flags::new()),
                    (MailboxId(i64::MAX), Flags::new()),
                ],
                queue: None,
            };
            assert!(matches!(
                store.deliver(delivery).await,
                Err(StoreError::NotFound)
            ));
            true
        }
        Op::FailingStore { mailbox, pick } => {
            let picked = model[*mailbox].pick(pick);
            let bad = Flags::new().with_keyword("two words");
            let r = store
                .store_flags(ids[*mailbox], &uids(&picked), FlagOp::Add, &bad, None)
                .await;
            assert!(matches!(r, Err(StoreError::Invalid(_))));
            true
        }
    }
}

/// The store equals the model: same UIDs, flags, contents, mod-sequences, counters and blob refcounts.
async fn check(store: &Store, ids: &[MailboxId], model: &[ModelBox]) {
    let mut refs = vec![0u64; contents().len()];
    for (id, m) in ids.iter().zip(model) {
        let mailbox = store.mailbox(*id).await.expect("mailbox").expect("present");
        assert_eq!(
            (mailbox.uidnext, mailbox.highestmodseq.0),
            (m.uidnext, m.highestmodseq)
        );
        let rows = store.messages(*id).await.expect("messages");
        assert!(rows.windows(2).all(|w| w[0].uid < w[1].uid), "UID order");
        let got: Vec<(u32, Flags, BlobId, u64)> = rows
            .into_iter()
            .map(|r| (r.uid.get(), r.flags, r.blob, r.modseq.0))
            .collect();
        let want: Vec<(u32, Flags, BlobId, u64)> = m
            .msgs
            .iter()
            .map(|(u, x)| {
                (
                    *u,
                    x.flags.clone(),
                    BlobId::of(&contents()[x.content]),
                    x.modseq,
                )
            })
            .collect();
        assert_eq!(got, want);
        m.msgs.values().for_each(|x| refs[x.content] += 1);
    }
    for (content, n) in contents().iter().zip(refs) {
        let info = store
            .blob_info(&BlobId::of(content))
            .await
            .expect("blob info");
        assert_eq!(info.map(|i| i.refcount), (n > 0).then_some(n));
        if let Some(info) = info {
            assert_eq!(info.inline, content.len() <= INLINE_MAX);
        }
    }
}

async fn run(ops: Vec<Op>) {
    let dir = tempfile::tempdir().expect("tempdir");
    let options = StoreOptions {
        inline_blob_max: INLINE_MAX,
        group_commit_window: Duration::ZERO,
        ..StoreOptions::new(dir.path())
    };
    let store = Store::open(options).await.expect("open");
    store.add_domain("example.test").await.expect("domain");
    let account = store
        .add_account(NewAccount {
            address: "u@example.test".into(),
            password_hash: "h".into(),
            ..Default::default()
        })
        .await
        .expect("account");
    let mut ids = Vec::new();
    for i in 0..MAILBOXES {
        ids.push(
            store
                .create_mailbox(account, &format!("m{i}"), None)
                .await
                .expect("mailbox"),
        );
    }
    let mut model: Vec<ModelBox> = (0..MAILBOXES)
        .map(|_| ModelBox {
            uidnext: 1,
            highestmodseq: 1,
            msgs: BTreeMap::new(),
        })
        .collect();
    for op in &ops {
        let before = model.clone();
        let failing = apply(&store, &ids, &mut model, op).await;
        for (b, a) in before.iter().zip(&model) {
            assert!(a.highestmodseq >= b.highestmodseq && a.uidnext >= b.uidnext);
        }
        if failing {
            assert!(
                model
                    .iter()
                    .zip(&before)
                    .all(|(a, b)| a.highestmodseq == b.highestmodseq)
            );
        }
        check(&store, &ids, &model).await;
    }
    store.check_integrity().await.expect("integrity");
    // Expunge everything: every blob must be gone.
    let deleted = Flags::from_system(SystemFlags::DELETED);
    for (id, m) in ids.iter().zip(&mut model) {
        let all: Vec<u32> = m.msgs.keys().copied().collect();
        store
            .store_flags(*id, &uids(&all), FlagOp::Add, &deleted, None)
            .await
            .expect("flag all");
        assert_eq!(
            store.expunge(*id, None).await.expect("expunge all"),
            uids(&all)
        );
    }
    for content in contents() {
        assert_eq!(
            store.blob_info(&BlobId::of(&content)).await.expect("info"),
            None
        );
    }
    let large = BlobId::of(&contents()[3]);
    let file = dir
        .path()
        .join("blobs")
        .join(&large.as_str()[..2])
        .join(&large.as_str()[2..]);
    assert!(
        !file.exists(),
        "large blob file removed with its last reference"
    );
    store.check_integrity().await.expect("integrity");
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 32, ..ProptestConfig::default() })]

    #[test]
    fn store_matches_model_and_keeps_uid_modseq_and_refcount_invariants(ops in prop::collection::vec(op(), 1..30)) {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
        rt.block_on(run(ops));
    }
}
