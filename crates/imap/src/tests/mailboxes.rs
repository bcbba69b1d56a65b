//! LIST, CREATE, RENAME, DELETE, SUBSCRIBE, STATUS, NAMESPACE and isolation.

use super::*;

#[tokio::test]
async fn list_shows_the_default_mailboxes_with_special_use_and_children() {
    let h = harness().await;
    let mut c = h.login().await;
    let lines = c.cmd("a LIST \"\" \"*\"", "a OK").await;
    assert_eq!(
        lines,
        [
            "* LIST (\\HasNoChildren \\Archive) \"/\" \"Archive\"",
            "* LIST (\\HasNoChildren \\Drafts) \"/\" \"Drafts\"",
            "* LIST (\\HasNoChildren) \"/\" \"INBOX\"",
            "* LIST (\\HasNoChildren \\Junk) \"/\" \"Junk\"",
            "* LIST (\\HasNoChildren \\Sent) \"/\" \"Sent\"",
            "* LIST (\\HasNoChildren \\Trash) \"/\" \"Trash\"",
        ]
    );
    let lines = c.cmd("b LIST \"\" \"\"", "b OK").await;
    assert_eq!(lines, ["* LIST (\\Noselect) \"/\" \"\""]);
    c.cmd("c CREATE Projects/Tern/Docs", "c OK").await;
    let lines = c.cmd("d LIST \"\" %", "d OK").await;
    assert!(
        has(&lines, "* LIST (\\HasChildren) \"/\" \"Projects\""),
        "{lines:#?}"
    );
    assert!(!has(&lines, "Projects/Tern"), "{lines:#?}");
    let lines = c.cmd("e LIST Projects/ %", "e OK").await;
    assert_eq!(lines, ["* LIST (\\HasChildren) \"/\" \"Projects/Tern\""]);
    let lines = c.cmd("f LIST \"\" inbox", "f OK").await;
    assert_eq!(lines, ["* LIST (\\HasNoChildren) \"/\" \"INBOX\""]);
}

#[tokio::test]
async fn list_extended_selection_and_return_options() {
    let h = harness().await;
    let mut c = h.login().await;
    let lines = c.cmd("a LIST (SPECIAL-USE) \"\" \"*\"", "a OK").await;
    assert_eq!(lines.len(), 5, "{lines:#?}");
    assert!(!has(&lines, "INBOX"));
    c.cmd("b CREATE Lists", "b OK").await;
    c.cmd("c UNSUBSCRIBE Lists", "c OK").await;
    let lines = c.cmd("d LIST (SUBSCRIBED) \"\" \"*\"", "d OK").await;
    assert!(!has(&lines, "Lists"), "{lines:#?}");
    assert!(
        has(
            &lines,
            "* LIST (\\HasNoChildren \\Subscribed) \"/\" \"INBOX\""
        ),
        "{lines:#?}"
    );
    let lines = c
        .cmd("e LIST \"\" \"*\" RETURN (SUBSCRIBED CHILDREN)", "e OK")
        .await;
    assert!(
        has(&lines, "* LIST (\\HasNoChildren) \"/\" \"Lists\""),
        "{lines:#?}"
    );
    assert!(has(&lines, "\\Subscribed) \"/\" \"INBOX\""), "{lines:#?}");
    h.deliver(MSG1).await;
    let lines = c
        .cmd(
            "f LIST \"\" INBOX RETURN (STATUS (MESSAGES UNSEEN SIZE))",
            "f OK",
        )
        .await;
    assert_eq!(lines[0], "* LIST (\\HasNoChildren) \"/\" \"INBOX\"");
    assert_eq!(
        lines[1],
        format!(
            "* STATUS \"INBOX\" (MESSAGES 1 UNSEEN 1 SIZE {})",
            MSG1.len()
        )
    );
    let lines = c.cmd("g LSUB \"\" \"*\"", "g OK").await;
    assert!(has(&lines, "* LSUB () \"/\" \"INBOX\""), "{lines:#?}");
    assert!(!has(&lines, "Lists"));
}

#[tokio::test]
async fn create_rename_and_delete_follow_rfc_9051() {
    let h = harness().await;
    let mut c = h.login().await;
    c.cmd("a CREATE Work", "a OK").await;
    c.cmd("b CREATE Work", "b NO [ALREADYEXISTS]").await;
    c.cmd("c CREATE Work/2024/", "c OK").await;
    c.cmd("d CREATE inbox", "d NO [ALREADYEXISTS]").await;
    c.cmd("e RENAME Work Job", "e OK").await;
    let lines = c.cmd("f LIST \"\" \"Job*\"", "f OK").await;
    assert_eq!(
        lines,
        [
            "* LIST (\\HasChildren) \"/\" \"Job\"",
            "* LIST (\\HasNoChildren) \"/\" \"Job/2024\"",
        ]
    );
    c.cmd("g RENAME Nope Other", "g NO [NONEXISTENT]").await;
    c.cmd("h RENAME Job Sent", "h NO [ALREADYEXISTS]").await;
    c.cmd("i DELETE INBOX", "i NO").await;
    c.cmd("j DELETE Job/2024", "j OK").await;
    c.cmd("k DELETE Job/2024", "k NO [NONEXISTENT]").await;
    c.cmd("l CREATE Important (USE (\\Flagged))", "l OK").await;
    let lines = c.cmd("m LIST \"\" Important", "m OK").await;
    assert_eq!(
        lines,
        ["* LIST (\\HasNoChildren \\Flagged) \"/\" \"Important\""]
    );
}

#[tokio::test]
async fn renaming_inbox_moves_its_messages_and_leaves_it_empty() {
    let h = harness().await;
    h.deliver(MSG1).await;
    h.deliver(MSG2).await;
    let mut c = h.login().await;
    c.cmd("a RENAME INBOX Old", "a OK").await;
    let lines = c.cmd("b STATUS INBOX (MESSAGES)", "b OK").await;
    assert_eq!(lines, ["* STATUS \"INBOX\" (MESSAGES 0)"]);
    let lines = c.cmd("c STATUS Old (MESSAGES)", "c OK").await;
    assert_eq!(lines, ["* STATUS \"Old\" (MESSAGES 2)"]);
}

#[tokio::test]
async fn status_reports_counters() {
    let h = harness().await;
    h.deliver(MSG1).await;
    let mut c = h.login().await;
    let st = h.store.mailbox_status(h.inbox).await.unwrap();
    let lines = c
        .cmd(
            "a STATUS inbox (MESSAGES UIDNEXT UIDVALIDITY UNSEEN DELETED SIZE HIGHESTMODSEQ RECENT)",
            "a OK",
        )
        .await;
    assert_eq!(
        lines,
        [format!(
            "* STATUS \"INBOX\" (MESSAGES 1 UIDNEXT 2 UIDVALIDITY {} UNSEEN 1 DELETED 0 SIZE {} HIGHESTMODSEQ {} RECENT 1)",
            st.uidvalidity.0,
            MSG1.len(),
            st.highestmodseq.0
        )]
    );
    c.cmd("b STATUS Nope (MESSAGES)", "b NO [NONEXISTENT]")
        .await;
}

#[tokio::test]
async fn namespace_enable_and_id() {
    let h = harness().await;
    let mut c = h.login().await;
    let lines = c.cmd("a NAMESPACE", "a OK").await;
    assert_eq!(lines, ["* NAMESPACE ((\"\" \"/\")) NIL NIL"]);
    let lines = c.cmd("b ENABLE CONDSTORE X-UNKNOWN", "b OK").await;
    assert_eq!(lines, ["* ENABLED CONDSTORE"]);
    let lines = c.cmd("c ENABLE CONDSTORE", "c OK").await;
    assert_eq!(lines, ["* ENABLED"]);
    let lines = c.cmd("d ID (\"name\" \"test\")", "d OK").await;
    assert!(
        lines[0].starts_with("* ID (\"name\" \"Tern\""),
        "{lines:#?}"
    );
}

#[tokio::test]
async fn another_users_mailboxes_do_not_exist_and_hostile_names_are_refused() {
    let h = harness().await;
    let mut bob = h.login_as(OTHER).await;
    bob.cmd("a CREATE Secret", "a OK").await;
    let mut c = h.login().await;
    c.cmd("b SELECT Secret", "b NO [NONEXISTENT]").await;
    c.cmd("c STATUS Secret (MESSAGES)", "c NO").await;
    c.cmd("d APPEND Secret {1+}\r\nx", "d NO [TRYCREATE]").await;
    let lines = c.cmd("e LIST \"\" \"*Secret*\"", "e OK").await;
    assert!(lines.is_empty());
    for (i, name) in ["..", "../x", "~bob", "#shared", "\"a\\\\b/../c\"", "/etc"]
        .iter()
        .enumerate()
    {
        c.cmd(&format!("f{i} CREATE {name}"), &format!("f{i} NO"))
            .await;
        c.cmd(&format!("g{i} SELECT {name}"), &format!("g{i} NO"))
            .await;
    }
    c.cmd("h CREATE \"Other Users/bob\"", "h OK").await;
    c.cmd("i SELECT \"Other Users/bob\"", "i OK").await;
    let lines = c.cmd("j FETCH 1:* FLAGS", "j OK").await;
    assert!(lines.is_empty(), "{lines:#?}");
}

#[tokio::test]
async fn create_and_rename_beyond_max_mailboxes_are_refused_with_limit() {
    // The six default mailboxes plus two.
    let h = harness_with(|ctx| ctx.max_mailboxes = 8).await;
    let mut c = h.login().await;
    c.cmd("a CREATE A", "a OK").await;
    // B and B/C would make nine.
    c.cmd("b CREATE B/C", "b NO [LIMIT]").await;
    c.cmd("c CREATE B", "c OK").await;
    c.cmd("d CREATE X", "d NO [LIMIT]").await;
    // A rename creates nothing unless the target needs parents, or the source is INBOX.
    c.cmd("e RENAME B X", "e OK").await;
    c.cmd("f RENAME X Y/Z", "f NO [LIMIT]").await;
    c.cmd("g RENAME INBOX Old", "g NO [LIMIT]").await;
    c.cmd("h DELETE A", "h OK").await;
    c.cmd("i CREATE X/C", "i OK").await;
    let lines = c.cmd("j LIST \"\" \"*\"", "j OK").await;
    assert_eq!(lines.len(), 8, "{lines:?}");
}

#[tokio::test]
async fn list_patterns_beyond_the_bounds_are_refused_with_limit() {
    let h = harness().await;
    let mut c = h.login().await;
    let long = "a".repeat(crate::names::MAX_PATTERN + 1);
    c.cmd(&format!("a LIST \"\" {long}"), "a NO [LIMIT]").await;
    c.cmd(&format!("b LSUB \"\" {long}"), "b NO [LIMIT]").await;
    let many = vec!["%"; crate::names::MAX_PATTERNS + 1].join(" ");
    c.cmd(&format!("c LIST \"\" ({many})"), "c NO [LIMIT]")
        .await;
    // A run of wildcards is one wildcard: this answers at once.
    let stars = "*%".repeat(400);
    let lines = c.cmd(&format!("d LIST \"\" \"{stars}\""), "d OK").await;
    assert_eq!(lines.len(), 6, "{lines:?}");
    let deep = vec!["a"; crate::names::MAX_DEPTH + 1].join("/");
    c.cmd(&format!("e CREATE {deep}"), "e NO").await;
}
