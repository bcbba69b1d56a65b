//! SEARCH (RFC 9051 §6.4.4, ESEARCH RFC 4731, SEARCHRES RFC 5182, CONDSTORE RFC 7162).

use super::{PResult, Parser};
use crate::imap::command::{CommandBody, EntryType, SearchCommand, SearchKey, SearchReturnOption};

impl Parser<'_> {
    // search             = "SEARCH" [search-return-opts] SP search-program
    // search-return-opts = SP "RETURN" SP "(" [search-return-opt *(SP search-return-opt)] ")"
    // search-program     = ["CHARSET" SP charset SP] search-key *(SP search-key)
    //                      ; CHARSET argument to SEARCH MUST be registered with IANA
    // charset            = atom / quoted
    pub(crate) fn search(&mut self, uid: bool) -> PResult<CommandBody> {
        let mut return_options = None;
        let start = self.pos;
        if self.eat(b' ') && self.eat_keyword(b"RETURN") {
            self.sp()?;
            return_options = Some(self.paren_list0(Self::search_return_opt)?);
        } else {
            self.pos = start;
        }
        self.sp()?;
        let mut charset = None;
        if self.eat_keyword(b"CHARSET") {
            self.sp()?;
            let raw = if self.peek() == Some(b'"') {
                self.quoted()?
            } else {
                self.atom()?.to_vec()
            };
            charset = Some(String::from_utf8(raw).map_err(|_| "invalid charset")?);
            self.sp()?;
        }
        let mut criteria = vec![self.search_key()?];
        while self.eat(b' ') {
            criteria.push(self.search_key()?);
        }
        Ok(CommandBody::Search(Box::new(SearchCommand {
            uid,
            return_options,
            charset,
            criteria,
        })))
    }

    // search-return-opt = "MIN" / "MAX" / "ALL" / "COUNT" / "SAVE" / search-ret-opt-ext
    fn search_return_opt(&mut self) -> PResult<SearchReturnOption> {
        Ok(match self.keyword()?.as_str() {
            "MIN" => SearchReturnOption::Min,
            "MAX" => SearchReturnOption::Max,
            "ALL" => SearchReturnOption::All,
            "COUNT" => SearchReturnOption::Count,
            "SAVE" => SearchReturnOption::Save,
            _ => return Err("unknown SEARCH return option".into()),
        })
    }

    // search-key = "ALL" / "ANSWERED" / "BCC" SP astring / "BEFORE" SP date /
    //              "BODY" SP astring / "CC" SP astring / "DELETED" / "FLAGGED" /
    //              "FROM" SP astring / "KEYWORD" SP flag-keyword / "ON" SP date /
    //              "SEEN" / "SINCE" SP date / "SUBJECT" SP astring / "TEXT" SP astring /
    //              "TO" SP astring / "UNANSWERED" / "UNDELETED" / "UNFLAGGED" /
    //              "UNKEYWORD" SP flag-keyword / "UNSEEN" / "DRAFT" /
    //              "HEADER" SP header-fld-name SP astring / "LARGER" SP number64 /
    //              "NOT" SP search-key / "OR" SP search-key SP search-key /
    //              "SENTBEFORE" SP date / "SENTON" SP date / "SENTSINCE" SP date /
    //              "SMALLER" SP number64 / "UID" SP sequence-set / "UNDRAFT" /
    //              sequence-set / "(" search-key *(SP search-key) ")"
    // search-key =/ "NEW" / "OLD" / "RECENT"                       ; RFC 3501
    // search-key =/ search-modsequence                             ; RFC 7162
    pub(crate) fn search_key(&mut self) -> PResult<SearchKey> {
        if self.is_sequence_set_start() {
            return Ok(SearchKey::SequenceSet(self.sequence_set()?));
        }
        if self.peek() == Some(b'(') {
            self.descend()?;
            let keys = self.paren_list(Self::search_key)?;
            self.ascend();
            return Ok(SearchKey::And(keys));
        }
        let name = self.keyword()?;
        let key = match name.as_str() {
            "ALL" => SearchKey::All,
            "ANSWERED" => SearchKey::Answered,
            "DELETED" => SearchKey::Deleted,
            "DRAFT" => SearchKey::Draft,
            "FLAGGED" => SearchKey::Flagged,
            "NEW" => SearchKey::New,
            "OLD" => SearchKey::Old,
            "RECENT" => SearchKey::Recent,
            "SEEN" => SearchKey::Seen,
            "UNANSWERED" => SearchKey::Unanswered,
            "UNDELETED" => SearchKey::Undeleted,
            "UNDRAFT" => SearchKey::Undraft,
            "UNFLAGGED" => SearchKey::Unflagged,
            "UNSEEN" => SearchKey::Unseen,
            "BCC" => SearchKey::Bcc(self.sp_astring()?),
            "BODY" => SearchKey::Body(self.sp_astring()?),
            "CC" => SearchKey::Cc(self.sp_astring()?),
            "FROM" => SearchKey::From(self.sp_astring()?),
            "SUBJECT" => SearchKey::Subject(self.sp_astring()?),
            "TEXT" => SearchKey::Text(self.sp_astring()?),
            "TO" => SearchKey::To(self.sp_astring()?),
            "BEFORE" => SearchKey::Before(self.sp_date()?),
            "ON" => SearchKey::On(self.sp_date()?),
            "SINCE" => SearchKey::Since(self.sp_date()?),
            "SENTBEFORE" => SearchKey::SentBefore(self.sp_date()?),
            "SENTON" => SearchKey::SentOn(self.sp_date()?),
            "SENTSINCE" => SearchKey::SentSince(self.sp_date()?),
            "KEYWORD" => {
                self.sp()?;
                SearchKey::Keyword(self.atom_string()?)
            }
            "UNKEYWORD" => {
                self.sp()?;
                SearchKey::Unkeyword(self.atom_string()?)
            }
            // header-fld-name = astring
            "HEADER" => {
                self.sp()?;
                let field = self.astring_utf8()?;
                SearchKey::Header(field, self.sp_astring()?)
            }
            "LARGER" => {
                self.sp()?;
                SearchKey::Larger(self.number64()?)
            }
            "SMALLER" => {
                self.sp()?;
                SearchKey::Smaller(self.number64()?)
            }
            "UID" => {
                self.sp()?;
                SearchKey::Uid(self.sequence_set()?)
            }
            "NOT" => {
                self.sp()?;
                self.descend()?;
                let key = self.search_key()?;
                self.ascend();
                SearchKey::Not(Box::new(key))
            }
            "OR" => {
                self.sp()?;
                self.descend()?;
                let left = self.search_key()?;
                self.sp()?;
                let right = self.search_key()?;
                self.ascend();
                SearchKey::Or(Box::new(left), Box::new(right))
            }
            "MODSEQ" => self.search_modsequence()?,
            _ => return Err("unknown search key".into()),
        };
        Ok(key)
    }

    fn sp_astring(&mut self) -> PResult<Vec<u8>> {
        self.sp()?;
        self.astring()
    }

    fn sp_date(&mut self) -> PResult<crate::imap::types::Date> {
        self.sp()?;
        self.date()
    }

    // search-modsequence = "MODSEQ" [search-modseq-ext] SP mod-sequence-valzer
    // search-modseq-ext  = SP entry-name SP entry-type-req
    // entry-name         = entry-flag-name
    // entry-flag-name    = DQUOTE "/flags/" attr-flag DQUOTE
    // entry-type-req     = entry-type-resp / "all"
    // entry-type-resp    = "priv" / "shared"
    fn search_modsequence(&mut self) -> PResult<SearchKey> {
        self.sp()?;
        let mut entry = None;
        if self.peek() == Some(b'"') {
            let name = String::from_utf8(self.quoted()?).map_err(|_| "invalid entry name")?;
            if !name.to_ascii_lowercase().starts_with("/flags/") {
                return Err("invalid MODSEQ entry name".into());
            }
            self.sp()?;
            let kind = match self.keyword()?.as_str() {
                "PRIV" => EntryType::Private,
                "SHARED" => EntryType::Shared,
                "ALL" => EntryType::All,
                _ => return Err("invalid MODSEQ entry type".into()),
            };
            self.sp()?;
            entry = Some((name, kind));
        }
        Ok(SearchKey::ModSeq {
            entry,
            mod_seq: self.mod_sequence_valzer()?,
        })
    }
}
