//! FETCH (RFC 9051 §6.4.5, BINARY RFC 3516, CONDSTORE/QRESYNC RFC 7162) and STORE (§6.4.6).

use super::{PResult, Parser};
use crate::imap::command::{
    CommandBody, FetchCommand, FetchItem, FetchItems, FetchMacro, FetchModifiers, StoreAction,
    StoreCommand,
};
use crate::imap::types::{Section, SectionText};

impl Parser<'_> {
    // fetch           = "FETCH" SP sequence-set SP ("ALL" / "FULL" / "FAST" /
    //                   fetch-att / "(" fetch-att *(SP fetch-att) ")") [fetch-modifiers]
    // fetch-modifiers = SP "(" fetch-modifier *(SP fetch-modifier) ")"   ; RFC 4466
    // fetch-modifier  =/ chgsince-fetch-mod / "VANISHED"                  ; RFC 7162
    // chgsince-fetch-mod = "CHANGEDSINCE" SP mod-sequence-value
    pub(crate) fn fetch(&mut self, uid: bool) -> PResult<CommandBody> {
        self.sp()?;
        let set = self.sequence_set()?;
        self.sp()?;
        let items = if self.peek() == Some(b'(') {
            FetchItems::Items(self.paren_list(Self::fetch_att)?)
        } else if self.eat_keyword(b"ALL") {
            FetchItems::Macro(FetchMacro::All)
        } else if self.eat_keyword(b"FAST") {
            FetchItems::Macro(FetchMacro::Fast)
        } else if self.eat_keyword(b"FULL") {
            FetchItems::Macro(FetchMacro::Full)
        } else {
            FetchItems::Items(vec![self.fetch_att()?])
        };
        let mut modifiers = FetchModifiers::default();
        if self.eat(b' ') {
            self.paren_list(|p| {
                if p.eat_keyword(b"CHANGEDSINCE") {
                    p.sp()?;
                    modifiers.changed_since = Some(p.mod_sequence_value()?);
                } else if p.eat_keyword(b"VANISHED") {
                    modifiers.vanished = true;
                } else {
                    return Err("unknown FETCH modifier".into());
                }
                Ok(())
            })?;
        }
        Ok(CommandBody::Fetch(Box::new(FetchCommand {
            uid,
            set,
            items,
            modifiers,
        })))
    }

    // fetch-att = "ENVELOPE" / "FLAGS" / "INTERNALDATE" / "RFC822.SIZE" /
    //             "BODY" ["STRUCTURE"] / "UID" / "BODY" section [partial] /
    //             "BODY.PEEK" section [partial] / "BINARY" [".PEEK"] section-binary [partial] /
    //             "BINARY.SIZE" section-binary
    // fetch-att =/ "RFC822" / "RFC822.HEADER" / "RFC822.TEXT"   ; RFC 3501
    // fetch-att =/ "MODSEQ"                                      ; RFC 7162
    fn fetch_att(&mut self) -> PResult<FetchItem> {
        let name = self.take_while(|b| b.is_ascii_alphanumeric() || b == b'.');
        let name = String::from_utf8_lossy(name).to_ascii_uppercase();
        let item = match name.as_str() {
            "ENVELOPE" => FetchItem::Envelope,
            "FLAGS" => FetchItem::Flags,
            "INTERNALDATE" => FetchItem::InternalDate,
            "RFC822.SIZE" => FetchItem::Rfc822Size,
            "BODYSTRUCTURE" => FetchItem::BodyStructure,
            "UID" => FetchItem::Uid,
            "MODSEQ" => FetchItem::ModSeq,
            "RFC822" => FetchItem::Rfc822,
            "RFC822.HEADER" => FetchItem::Rfc822Header,
            "RFC822.TEXT" => FetchItem::Rfc822Text,
            "BODY" if self.peek() != Some(b'[') => FetchItem::Body,
            "BODY" | "BODY.PEEK" => FetchItem::BodySection {
                peek: name == "BODY.PEEK",
                section: self.section()?,
                partial: self.partial()?,
            },
            "BINARY" | "BINARY.PEEK" => FetchItem::Binary {
                peek: name == "BINARY.PEEK",
                part: self.section_binary()?,
                partial: self.partial()?,
            },
            "BINARY.SIZE" => FetchItem::BinarySize {
                part: self.section_binary()?,
            },
            _ => return Err("unknown FETCH item".into()),
        };
        Ok(item)
    }

    // section-part = nz-number *("." nz-number)
    fn section_part(&mut self) -> PResult<Vec<std::num::NonZeroU32>> {
        let mut part = vec![self.nz_number()?];
        while self.peek() == Some(b'.') && self.peek_at(1).is_some_and(|b| b.is_ascii_digit()) {
            self.pos += 1;
            part.push(self.nz_number()?);
        }
        Ok(part)
    }

    // section         = "[" [section-spec] "]"
    // section-spec    = section-msgtext / (section-part ["." section-text])
    // section-msgtext = "HEADER" / "HEADER.FIELDS" [".NOT"] SP header-list / "TEXT"
    // section-text    = section-msgtext / "MIME"
    pub(crate) fn section(&mut self) -> PResult<Section> {
        self.expect(b'[', "expected [")?;
        let mut section = Section::default();
        if self.eat(b']') {
            return Ok(section);
        }
        if self.peek().is_some_and(|b| b.is_ascii_digit()) {
            section.part = self.section_part()?;
            if self.eat(b'.') {
                section.text = Some(self.section_text(true)?);
            }
        } else {
            section.text = Some(self.section_text(false)?);
        }
        self.expect(b']', "expected ] after section")?;
        Ok(section)
    }

    fn section_text(&mut self, has_part: bool) -> PResult<SectionText> {
        let name = self.take_while(|b| b.is_ascii_alphabetic() || b == b'.');
        Ok(match name.to_ascii_uppercase().as_slice() {
            b"HEADER" => SectionText::Header,
            b"TEXT" => SectionText::Text,
            b"MIME" if has_part => SectionText::Mime,
            b"HEADER.FIELDS" => SectionText::HeaderFields(self.header_list()?),
            b"HEADER.FIELDS.NOT" => SectionText::HeaderFieldsNot(self.header_list()?),
            _ => return Err("invalid section".into()),
        })
    }

    // header-list     = "(" header-fld-name *(SP header-fld-name) ")"
    // header-fld-name = astring
    fn header_list(&mut self) -> PResult<Vec<String>> {
        self.sp()?;
        self.paren_list(Self::astring_utf8)
    }

    // section-binary = "[" [section-part] "]"
    fn section_binary(&mut self) -> PResult<Vec<std::num::NonZeroU32>> {
        self.expect(b'[', "expected [")?;
        if self.eat(b']') {
            return Ok(Vec::new());
        }
        let part = self.section_part()?;
        self.expect(b']', "expected ] after section")?;
        Ok(part)
    }

    // store           = "STORE" SP sequence-set [store-modifiers] SP store-att-flags
    // store-modifiers = SP "(" store-modifier *(SP store-modifier) ")"    ; RFC 4466
    // store-modifier  =/ "UNCHANGEDSINCE" SP mod-sequence-valzer           ; RFC 7162
    // store-att-flags = (["+" / "-"] "FLAGS" [".SILENT"]) SP
    //                   (flag-list / (flag *(SP flag)))
    pub(crate) fn store(&mut self, uid: bool) -> PResult<CommandBody> {
        self.sp()?;
        let set = self.sequence_set()?;
        self.sp()?;
        let mut unchanged_since = None;
        if self.peek() == Some(b'(') {
            self.paren_list(|p| {
                if !p.eat_keyword(b"UNCHANGEDSINCE") {
                    return Err("unknown STORE modifier".into());
                }
                p.sp()?;
                unchanged_since = Some(p.mod_sequence_valzer()?);
                Ok(())
            })?;
            self.sp()?;
        }
        let action = if self.eat(b'+') {
            StoreAction::Add
        } else if self.eat(b'-') {
            StoreAction::Remove
        } else {
            StoreAction::Replace
        };
        let silent = if self.eat_keyword(b"FLAGS") {
            false
        } else if self.eat_keyword(b"FLAGS.SILENT") {
            true
        } else {
            return Err("expected FLAGS".into());
        };
        self.sp()?;
        let flags = if self.peek() == Some(b'(') {
            self.flag_list()?
        } else {
            let mut flags = vec![self.flag()?];
            while self.eat(b' ') {
                flags.push(self.flag()?);
            }
            flags
        };
        Ok(CommandBody::Store(Box::new(StoreCommand {
            uid,
            set,
            unchanged_since,
            action,
            silent,
            flags,
        })))
    }
}
