//! Command dispatch and the commands without a file of their own.

use bytes::Bytes;

use super::{LiteralKind, PResult, ParseError, ParseOptions, Parser};
use crate::imap::command::{
    AppendContent, AppendData, AppendDataKind, AppendMessage, Command, CommandBody, ListCommand,
    ListReturnOption, ListSelectOption, QResyncParams, SelectParams,
};
use crate::imap::types::{MailboxAttribute, Secret, StatusItem, Tag, UidValidity, is_tag_char};

/// Parses one framed command. On error, also returns the tag when it could be read, so the
/// session can answer `tag BAD ...` (or `* BAD ...` without one).
// command = tag SP (command-any / command-auth / command-nonauth / command-select) CRLF
pub(crate) fn parse_command(
    input: &Bytes,
    opts: ParseOptions<'_>,
) -> Result<Command, (Option<Tag>, ParseError)> {
    let mut p = Parser::new(input, opts);
    let tag = p.tag().map_err(|e| (None, e))?;
    match p.sp().and_then(|()| p.command_body()) {
        Ok(body) => Ok(Command { tag, body }),
        Err(e) => Err((Some(tag), e)),
    }
}

impl Parser<'_> {
    // tag = 1*<any ASTRING-CHAR except "+">
    fn tag(&mut self) -> PResult<Tag> {
        let raw = self.take_while(is_tag_char);
        std::str::from_utf8(raw)
            .ok()
            .and_then(Tag::new)
            .ok_or_else(|| "missing or invalid tag".into())
    }

    fn command_body(&mut self) -> PResult<CommandBody> {
        let name = self
            .keyword()
            .map_err(|_| ParseError::from("expected a command"))?;
        let body = match name.as_str() {
            // command-any = "CAPABILITY" / "LOGOUT" / "NOOP" / enable / x-command / id
            "CAPABILITY" => CommandBody::Capability,
            "LOGOUT" => CommandBody::Logout,
            "NOOP" => CommandBody::Noop,
            "ENABLE" => self.enable()?,
            "ID" => self.id()?,
            // command-nonauth = login / authenticate / "STARTTLS"
            "STARTTLS" => CommandBody::StartTls,
            "LOGIN" => self.login()?,
            "AUTHENTICATE" => self.authenticate()?,
            // command-auth = append / create / delete / examine / list / namespace-command /
            //                rename / select / status / subscribe / unsubscribe / idle
            "APPEND" => self.append()?,
            "CREATE" => self.create()?,
            "DELETE" => CommandBody::Delete {
                mailbox: self.sp_mailbox()?,
            },
            "EXAMINE" => {
                let (mailbox, params) = self.select()?;
                CommandBody::Examine { mailbox, params }
            }
            "SELECT" => {
                let (mailbox, params) = self.select()?;
                CommandBody::Select { mailbox, params }
            }
            "LIST" => self.list()?,
            "LSUB" => self.lsub()?,
            "NAMESPACE" => CommandBody::Namespace,
            // rename = "RENAME" SP mailbox SP mailbox
            "RENAME" => CommandBody::Rename {
                from: self.sp_mailbox()?,
                to: self.sp_mailbox()?,
            },
            "STATUS" => self.status()?,
            "SUBSCRIBE" => CommandBody::Subscribe {
                mailbox: self.sp_mailbox()?,
            },
            "UNSUBSCRIBE" => CommandBody::Unsubscribe {
                mailbox: self.sp_mailbox()?,
            },
            // idle = "IDLE" CRLF "DONE"
            "IDLE" => CommandBody::Idle,
            // command-select = "CLOSE" / "UNSELECT" / "EXPUNGE" / copy / move / fetch /
            //                  store / search / uid
            "CHECK" => CommandBody::Check,
            "CLOSE" => CommandBody::Close,
            "UNSELECT" => CommandBody::Unselect,
            "EXPUNGE" => CommandBody::Expunge,
            "COPY" => self.copy_or_move(false, false)?,
            "MOVE" => self.copy_or_move(false, true)?,
            "FETCH" => self.fetch(false)?,
            "STORE" => self.store(false)?,
            "SEARCH" => self.search(false)?,
            "UID" => self.uid()?,
            _ => return Err("unknown command".into()),
        };
        self.end()?;
        Ok(body)
    }

    fn sp_mailbox(&mut self) -> PResult<crate::imap::types::Mailbox> {
        self.sp()?;
        self.mailbox()
    }

    // uid        = "UID" SP (copy / move / fetch / search / store / uid-expunge)
    // uid-expunge = "EXPUNGE" SP sequence-set
    fn uid(&mut self) -> PResult<CommandBody> {
        self.sp()?;
        let name = self.keyword()?;
        match name.as_str() {
            "COPY" => self.copy_or_move(true, false),
            "MOVE" => self.copy_or_move(true, true),
            "FETCH" => self.fetch(true),
            "SEARCH" => self.search(true),
            "STORE" => self.store(true),
            "EXPUNGE" => {
                self.sp()?;
                Ok(CommandBody::UidExpunge {
                    uids: self.sequence_set()?,
                })
            }
            _ => Err("unknown UID command".into()),
        }
    }

    // enable     = "ENABLE" 1*(SP capability)
    // capability = ("AUTH=" auth-type) / atom
    fn enable(&mut self) -> PResult<CommandBody> {
        let mut capabilities = Vec::new();
        while self.eat(b' ') {
            capabilities.push(self.atom_string()?);
        }
        if capabilities.is_empty() {
            return Err("ENABLE needs a capability".into());
        }
        Ok(CommandBody::Enable { capabilities })
    }

    // id             = "ID" SP id-params-list                      ; RFC 2971
    // id-params-list = "(" #(string SP nstring) ")" / nil
    fn id(&mut self) -> PResult<CommandBody> {
        self.sp()?;
        if self.nil() {
            return Ok(CommandBody::Id { params: None });
        }
        let params = self.paren_list0(|p| {
            let field = p.string_utf8()?;
            p.sp()?;
            Ok((field, p.nstring_utf8()?))
        })?;
        Ok(CommandBody::Id {
            params: Some(params),
        })
    }

    // login    = "LOGIN" SP userid SP password
    // userid   = astring
    // password = astring
    fn login(&mut self) -> PResult<CommandBody> {
        self.sp()?;
        let username = self.astring_utf8()?;
        self.sp()?;
        let password = Secret::new(self.astring()?);
        Ok(CommandBody::Login { username, password })
    }

    // authenticate = "AUTHENTICATE" SP auth-type [SP initial-resp] *(CRLF base64)
    // auth-type    = atom
    // initial-resp = (base64 / "=")                                ; RFC 4959
    // base64       = *(4base64-char) [base64-terminal]
    fn authenticate(&mut self) -> PResult<CommandBody> {
        self.sp()?;
        let mechanism = self.keyword()?;
        let initial_response = if self.eat(b' ') {
            let data = self.take_while(|b| b.is_ascii_alphanumeric() || b"+/=".contains(&b));
            if data.is_empty() {
                return Err("invalid initial response".into());
            }
            Some(Secret::new(data))
        } else {
            None
        };
        Ok(CommandBody::Authenticate {
            mechanism,
            initial_response,
        })
    }

    // select        = "SELECT" SP mailbox [select-params]
    // examine       = "EXAMINE" SP mailbox [select-params]
    // select-params = SP "(" select-param *(SP select-param) ")"
    // select-param  = "CONDSTORE" / "QRESYNC" SP "(" uidvalidity SP mod-sequence-value
    //                 [SP known-uids] [SP seq-match-data] ")"     ; RFC 7162
    // known-uids     = sequence-set
    // seq-match-data = "(" known-sequence-set SP known-uid-set ")"
    fn select(&mut self) -> PResult<(crate::imap::types::Mailbox, SelectParams)> {
        let mailbox = self.sp_mailbox()?;
        let mut params = SelectParams::default();
        if self.eat(b' ') {
            self.paren_list(|p| {
                if p.eat_keyword(b"CONDSTORE") {
                    params.condstore = true;
                } else if p.eat_keyword(b"QRESYNC") {
                    p.sp()?;
                    params.qresync = Some(p.qresync()?);
                } else {
                    return Err("unknown SELECT parameter".into());
                }
                Ok(())
            })?;
        }
        Ok((mailbox, params))
    }

    fn qresync(&mut self) -> PResult<QResyncParams> {
        self.expect(b'(', "expected QRESYNC parameters")?;
        let uid_validity = UidValidity(self.nz_number()?);
        self.sp()?;
        let mod_seq = self.mod_sequence_value()?;
        let mut known_uids = None;
        let mut seq_match = None;
        if self.eat(b' ') {
            if self.peek() != Some(b'(') {
                known_uids = Some(self.sequence_set()?);
                if self.eat(b' ') {
                    seq_match = Some(self.seq_match_data()?);
                }
            } else {
                seq_match = Some(self.seq_match_data()?);
            }
        }
        self.expect(b')', "expected ) after QRESYNC parameters")?;
        Ok(QResyncParams {
            uid_validity,
            mod_seq,
            known_uids,
            seq_match,
        })
    }

    fn seq_match_data(&mut self) -> PResult<(crate::imap::SequenceSet, crate::imap::SequenceSet)> {
        self.expect(b'(', "expected sequence match data")?;
        let seqs = self.sequence_set()?;
        self.sp()?;
        let uids = self.sequence_set()?;
        self.expect(b')', "expected ) after sequence match data")?;
        Ok((seqs, uids))
    }

    // create        = "CREATE" SP mailbox [create-params]          ; RFC 4466, RFC 6154
    // create-params = SP "(" create-param *( SP create-param) ")"
    // create-param  = "USE" SP "(" [use-attr *(SP use-attr)] ")"
    // use-attr      = "\All" / "\Archive" / "\Drafts" / "\Flagged" / "\Junk" /
    //                 "\Sent" / "\Trash" / use-attr-ext
    fn create(&mut self) -> PResult<CommandBody> {
        let mailbox = self.sp_mailbox()?;
        let mut special_use = Vec::new();
        if self.eat(b' ') {
            self.paren_list(|p| {
                if !p.eat_keyword(b"USE") {
                    return Err("unknown CREATE parameter".into());
                }
                p.sp()?;
                special_use.extend(p.paren_list0(Self::mailbox_attribute)?);
                Ok(())
            })?;
        }
        Ok(CommandBody::Create {
            mailbox,
            special_use,
        })
    }

    // mbx-list-flag = "\All" / ... / "\" atom
    fn mailbox_attribute(&mut self) -> PResult<MailboxAttribute> {
        self.expect(b'\\', "expected a mailbox attribute")?;
        Ok(MailboxAttribute::from_name(&self.atom_string()?))
    }

    // list             = "LIST" [SP list-select-opts] SP mailbox SP mbox-or-pat
    //                    [SP list-return-opts]
    // list-select-opts = "(" [(*(list-select-opt SP) list-select-base-opt
    //                    *(SP list-select-opt)) / (list-select-independent-opt
    //                    *(SP list-select-independent-opt))] ")"
    // mbox-or-pat      = list-mailbox / patterns
    // patterns         = "(" list-mailbox *(SP list-mailbox) ")"
    // list-return-opts = "RETURN" SP "(" [return-option *(SP return-option)] ")"
    fn list(&mut self) -> PResult<CommandBody> {
        self.sp()?;
        let mut selection = Vec::new();
        if self.peek() == Some(b'(') {
            selection = self.paren_list0(|p| {
                Ok(match p.keyword()?.as_str() {
                    "SUBSCRIBED" => ListSelectOption::Subscribed,
                    "REMOTE" => ListSelectOption::Remote,
                    "RECURSIVEMATCH" => ListSelectOption::RecursiveMatch,
                    "SPECIAL-USE" => ListSelectOption::SpecialUse,
                    _ => return Err("unknown LIST selection option".into()),
                })
            })?;
            // RFC 5258 §3: RECURSIVEMATCH needs a base option to modify.
            if selection.contains(&ListSelectOption::RecursiveMatch)
                && !selection.iter().any(|o| {
                    matches!(
                        o,
                        ListSelectOption::Subscribed | ListSelectOption::SpecialUse
                    )
                })
            {
                return Err("RECURSIVEMATCH requires another selection option".into());
            }
            self.sp()?;
        }
        let reference = self.reference()?;
        self.sp()?;
        let patterns = if self.peek() == Some(b'(') {
            self.paren_list(Self::list_mailbox)?
        } else {
            vec![self.list_mailbox()?]
        };
        let mut return_options = Vec::new();
        if self.eat(b' ') {
            if !self.eat_keyword(b"RETURN") {
                return Err("expected RETURN".into());
            }
            self.sp()?;
            return_options = self.paren_list0(|p| {
                Ok(match p.keyword()?.as_str() {
                    "SUBSCRIBED" => ListReturnOption::Subscribed,
                    "CHILDREN" => ListReturnOption::Children,
                    "SPECIAL-USE" => ListReturnOption::SpecialUse,
                    "STATUS" => {
                        p.sp()?;
                        ListReturnOption::Status(p.paren_list(Self::status_att)?)
                    }
                    _ => return Err("unknown LIST return option".into()),
                })
            })?;
        }
        Ok(CommandBody::List(ListCommand {
            selection,
            reference,
            patterns,
            return_options,
        }))
    }

    // lsub = "LSUB" SP mailbox SP list-mailbox                    ; RFC 3501
    fn lsub(&mut self) -> PResult<CommandBody> {
        self.sp()?;
        let reference = self.reference()?;
        self.sp()?;
        let pattern = self.list_mailbox()?;
        Ok(CommandBody::Lsub { reference, pattern })
    }

    // status     = "STATUS" SP mailbox SP "(" status-att *(SP status-att) ")"
    fn status(&mut self) -> PResult<CommandBody> {
        let mailbox = self.sp_mailbox()?;
        self.sp()?;
        let items = self.paren_list(Self::status_att)?;
        Ok(CommandBody::Status { mailbox, items })
    }

    // status-att = "MESSAGES" / "UIDNEXT" / "UIDVALIDITY" / "UNSEEN" / "DELETED" / "SIZE"
    //              / "HIGHESTMODSEQ" (RFC 7162) / "RECENT" (RFC 3501)
    fn status_att(&mut self) -> PResult<StatusItem> {
        let name = self.keyword()?;
        StatusItem::ALL
            .iter()
            .find(|(_, n)| *n == name)
            .map(|(item, _)| *item)
            .ok_or_else(|| "unknown STATUS item".into())
    }

    // append         = "APPEND" SP mailbox 1*append-message       ; RFC 3502
    // append-message = append-opts SP append-data
    // append-opts    = [SP flag-list] [SP date-time] *(SP append-ext)
    // append-data    = literal / literal8 / append-data-ext
    // append-data    =/ "UTF8" SP "(" literal8 ")"                 ; RFC 6855
    fn append(&mut self) -> PResult<CommandBody> {
        let mailbox = self.sp_mailbox()?;
        let mut messages = Vec::new();
        while self.eat(b' ') {
            let mut message = AppendMessage {
                flags: Vec::new(),
                date: None,
                data: AppendData {
                    kind: AppendDataKind::Literal,
                    content: AppendContent::Octets(Bytes::new()),
                },
            };
            if self.peek() == Some(b'(') {
                message.flags = self.flag_list()?;
                self.sp()?;
            }
            if self.peek() == Some(b'"') {
                message.date = Some(self.date_time()?);
                self.sp()?;
            }
            message.data = if self.eat_keyword(b"UTF8") {
                self.sp()?;
                self.expect(b'(', "expected ( after UTF8")?;
                let (content, kind) = self.message_literal()?;
                if kind != LiteralKind::Literal8 {
                    return Err("UTF8 needs a literal8".into());
                }
                self.expect(b')', "expected ) after UTF8 literal")?;
                AppendData {
                    kind: AppendDataKind::Utf8,
                    content,
                }
            } else {
                // A literal's CHAR8 excludes NUL, but rejecting a whole message for one NUL
                // helps nobody: it is stored as sent.
                let (content, kind) = self.message_literal()?;
                AppendData {
                    kind: match kind {
                        LiteralKind::Literal => AppendDataKind::Literal,
                        LiteralKind::Literal8 => AppendDataKind::Literal8,
                    },
                    content,
                }
            };
            messages.push(message);
        }
        if messages.is_empty() {
            return Err("APPEND needs a message".into());
        }
        Ok(CommandBody::Append { mailbox, messages })
    }

    // copy = "COPY" SP sequence-set SP mailbox
    // move = "MOVE" SP sequence-set SP mailbox                     ; RFC 6851
    fn copy_or_move(&mut self, uid: bool, is_move: bool) -> PResult<CommandBody> {
        self.sp()?;
        let set = self.sequence_set()?;
        let mailbox = self.sp_mailbox()?;
        Ok(if is_move {
            CommandBody::Move { uid, set, mailbox }
        } else {
            CommandBody::Copy { uid, set, mailbox }
        })
    }
}
