//! The filter stage in the pipeline: Junk mailbox, refusals, allow-list, added fields.

use std::net::{IpAddr, Ipv4Addr};
use std::time::SystemTime;

use bytes::Bytes;
use tern_common::config::{ClamdAddress, FilterConfig};
use tern_common::{Address, Secret};
use tern_directory::{Argon2Params, Directory, DirectoryConfig, Recipient};
use tern_filter::{Filter, SenderAction};
use tern_store::{AccountId, SpecialUse, Store, StoreOptions};

use crate::{
    DeliveryError, Inbound, InboundKind, InboundRecipient, Pipeline, Trace, TraceProtocol,
};

/// No Date and no Message-ID: 2.0 points from the rules alone, no training needed.
const SLOPPY: &[u8] = b"From: Deals <deals@bulk.test>\r\nSubject: offer\r\n\r\nBuy.\r\n";

struct Env {
    _dir: tempfile::TempDir,
    store: Store,
    directory: Directory,
}

async fn env() -> Env {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(StoreOptions::new(dir.path())).await.unwrap();
    let config = DirectoryConfig {
        argon2: Argon2Params {
            m_cost_kib: 64,
            t_cost: 1,
            p_cost: 1,
        },
        ..DirectoryConfig::default()
    };
    let directory = Directory::new(store.clone(), config).unwrap();
    directory.add_domain("example.test").await.unwrap();
    for user in ["alice", "bob"] {
        directory
            .add_user(
                &format!("{user}@example.test"),
                &Secret::new("pw pw pw pw"),
                None,
            )
            .await
            .unwrap();
    }
    Env {
        _dir: dir,
        store,
        directory,
    }
}

impl Env {
    fn pipeline(&self, config: FilterConfig) -> Pipeline {
        let filter = Filter::new(
            config,
            self.store.clone(),
            "mx.example.test",
            &["example.test".into()],
        );
        Pipeline::new(
            self.store.clone(),
            self.directory.clone(),
            "mx.example.test".into(),
        )
        .with_filter(filter)
    }

    async fn account(&self, user: &str) -> AccountId {
        let address: Address = user.parse().unwrap();
        self.directory.user(&address).await.unwrap().unwrap().id
    }

    async fn message(&self, address: &str, kind: InboundKind, data: &[u8]) -> Inbound {
        let address: Address = address.parse().unwrap();
        let Recipient::Local(accounts) = self.directory.resolve_recipient(&address).await.unwrap()
        else {
            panic!("not local");
        };
        Inbound {
            mail_from: Some("deals@bulk.test".parse().unwrap()),
            recipients: vec![InboundRecipient {
                address,
                accounts,
                remote: Vec::new(),
                notify: Default::default(),
                orcpt: None,
            }],
            data: Bytes::copy_from_slice(data),
            trace: Trace {
                helo: "bulk.test".into(),
                client_ip: IpAddr::V4(Ipv4Addr::new(192, 0, 2, 9)),
                client_name: None,
                protocol: TraceProtocol::Esmtp,
                tls: None,
                session_id: "f1".into(),
                received_at: SystemTime::now(),
            },
            kind,
            env_id: None,
            ret: None,
        }
    }

    /// Stored bytes per mailbox kind of `user`: (INBOX, Junk).
    async fn boxes(&self, user: &str) -> (Vec<Bytes>, Vec<Bytes>) {
        let account = self.account(user).await;
        let mut inbox = Vec::new();
        let mut junk = Vec::new();
        for mailbox in self.store.mailboxes(account).await.unwrap() {
            let target = match (mailbox.name.as_str(), mailbox.special_use) {
                ("INBOX", _) => &mut inbox,
                (_, Some(SpecialUse::Junk)) => &mut junk,
                _ => continue,
            };
            for m in self.store.messages(mailbox.id).await.unwrap() {
                target.push(self.store.read_blob(&m.blob).await.unwrap());
            }
        }
        (inbox, junk)
    }
}

fn junk_at(threshold: f64) -> FilterConfig {
    FilterConfig {
        junk_threshold: threshold,
        reject_threshold: 100.0,
        ..FilterConfig::default()
    }
}

#[tokio::test]
async fn a_junk_verdict_delivers_to_the_junk_mailbox_with_spam_fields_below_received() {
    let env = env().await;
    let pipeline = env.pipeline(junk_at(1.0));
    let msg = env
        .message("alice@example.test", InboundKind::Mx, SLOPPY)
        .await;
    pipeline.deliver(msg).await.unwrap();
    let (inbox, junk) = env.boxes("alice@example.test").await;
    assert!(inbox.is_empty());
    assert_eq!(junk.len(), 1);
    let text = String::from_utf8_lossy(&junk[0]);
    let received = text.find("\r\nReceived:").unwrap();
    let status = text.find("\r\nX-Spam-Status: Yes, score=2.0").unwrap();
    assert!(received < status, "{text}");
    assert!(
        text.contains("tests=MISSING_DATE,MISSING_MESSAGE_ID"),
        "{text}"
    );
    assert!(junk[0].ends_with(SLOPPY), "original bytes intact: {text}");
}

#[tokio::test]
async fn a_score_below_the_threshold_goes_to_the_inbox() {
    let env = env().await;
    let pipeline = env.pipeline(junk_at(5.0));
    let msg = env
        .message("alice@example.test", InboundKind::Mx, SLOPPY)
        .await;
    pipeline.deliver(msg).await.unwrap();
    let (inbox, junk) = env.boxes("alice@example.test").await;
    assert_eq!((inbox.len(), junk.len()), (1, 0));
    assert!(String::from_utf8_lossy(&inbox[0]).contains("X-Spam-Status: No, score=2.0"));
}

#[tokio::test]
async fn a_reject_verdict_is_a_550_refusal_and_stores_nothing() {
    let env = env().await;
    let pipeline = env.pipeline(FilterConfig {
        junk_threshold: 1.0,
        reject_threshold: 1.5,
        ..FilterConfig::default()
    });
    let msg = env
        .message("alice@example.test", InboundKind::Mx, SLOPPY)
        .await;
    let err = pipeline.deliver(msg).await.unwrap_err();
    assert!(
        matches!(
            &err,
            DeliveryError::Refused {
                code: 550,
                status: [5, 7, 1],
                ..
            }
        ),
        "{err}"
    );
    assert!(!err.is_temporary());
    let (inbox, junk) = env.boxes("alice@example.test").await;
    assert!(inbox.is_empty() && junk.is_empty());
}

#[tokio::test]
async fn the_allow_list_beats_junk() {
    let env = env().await;
    let alice = env.account("alice@example.test").await;
    env.store
        .set_spam_sender(alice, "bulk.test", Some(SenderAction::Allow))
        .await
        .unwrap();
    let pipeline = env.pipeline(junk_at(1.0));
    let msg = env
        .message("alice@example.test", InboundKind::Mx, SLOPPY)
        .await;
    pipeline.deliver(msg).await.unwrap();
    let (inbox, junk) = env.boxes("alice@example.test").await;
    assert_eq!((inbox.len(), junk.len()), (1, 0));
    assert!(String::from_utf8_lossy(&inbox[0]).contains("allowlisted"));
    // Bob has no such entry: his copy of the same message goes to Junk.
    let msg = env
        .message("bob@example.test", InboundKind::Mx, SLOPPY)
        .await;
    pipeline.deliver(msg).await.unwrap();
    let (inbox, junk) = env.boxes("bob@example.test").await;
    assert_eq!((inbox.len(), junk.len()), (0, 1));
}

#[tokio::test]
async fn clamd_down_is_a_451_and_submissions_are_not_spam_scored() {
    let env = env().await;
    let missing = env._dir.path().join("clamd.sock");
    let pipeline = env.pipeline(FilterConfig {
        clamd: Some(ClamdAddress::Unix(missing)),
        ..junk_at(1.0)
    });
    let msg = env
        .message("alice@example.test", InboundKind::Mx, SLOPPY)
        .await;
    let err = pipeline.deliver(msg).await.unwrap_err();
    assert!(
        matches!(
            &err,
            DeliveryError::Refused {
                code: 451,
                status: [4, 7, 1],
                ..
            }
        ),
        "{err}"
    );
    assert!(err.is_temporary());
    let pipeline = env.pipeline(junk_at(1.0));
    let alice = env.account("alice@example.test").await;
    // Sloppy, but hers (the author check refuses other people's From:).
    let sloppy_own = b"From: alice@example.test\r\nSubject: offer\r\n\r\nBuy.\r\n";
    let msg = env
        .message(
            "alice@example.test",
            InboundKind::Submission { account: alice },
            sloppy_own,
        )
        .await;
    pipeline.deliver(msg).await.unwrap();
    let (inbox, _) = env.boxes("alice@example.test").await;
    assert_eq!(inbox.len(), 1);
    assert!(!String::from_utf8_lossy(&inbox[0]).contains("X-Spam"));
}
