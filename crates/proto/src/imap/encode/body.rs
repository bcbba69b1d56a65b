//! ENVELOPE and BODY/BODYSTRUCTURE (RFC 9051 §7.5.2, §9).

use super::Writer;
use crate::imap::response::{
    Address, BodyExtension, BodyFields, BodyStructure, Disposition, Envelope, SinglePartKind,
};

impl Writer<'_> {
    // envelope = "(" env-date SP env-subject SP env-from SP env-sender SP env-reply-to SP
    //            env-to SP env-cc SP env-bcc SP env-in-reply-to SP env-message-id ")"
    pub(super) fn envelope(&mut self, env: &Envelope) {
        self.byte(b'(');
        self.nstring(env.date.as_deref());
        self.sp();
        self.nstring(env.subject.as_deref());
        for addresses in [
            &env.from,
            &env.sender,
            &env.reply_to,
            &env.to,
            &env.cc,
            &env.bcc,
        ] {
            self.sp();
            self.addresses(addresses);
        }
        self.sp();
        self.nstring(env.in_reply_to.as_deref());
        self.sp();
        self.nstring(env.message_id.as_deref());
        self.byte(b')');
    }

    // env-from = "(" 1*address ")" / nil
    // address  = "(" addr-name SP addr-adl SP addr-mailbox SP addr-host ")"
    fn addresses(&mut self, addresses: &[Address]) {
        if addresses.is_empty() {
            self.str("NIL");
            return;
        }
        self.byte(b'(');
        for a in addresses {
            self.byte(b'(');
            self.nstring(a.name.as_deref());
            self.sp();
            self.nstring(a.adl.as_deref());
            self.sp();
            self.nstring(a.mailbox.as_deref());
            self.sp();
            self.nstring(a.host.as_deref());
            self.byte(b')');
        }
        self.byte(b')');
    }

    // body            = "(" (body-type-1part / body-type-mpart) ")"
    // body-type-1part = (body-type-basic / body-type-msg / body-type-text) [SP body-ext-1part]
    // body-type-basic = media-basic SP body-fields
    // body-type-msg   = media-message SP body-fields SP envelope SP body SP body-fld-lines
    // body-type-text  = media-text SP body-fields SP body-fld-lines
    // body-type-mpart = 1*body SP media-subtype [SP body-ext-mpart]
    /// `extension`: BODYSTRUCTURE (with extension data) rather than BODY.
    pub(super) fn body(&mut self, body: &BodyStructure, extension: bool) {
        self.byte(b'(');
        match body {
            BodyStructure::Single {
                fields,
                kind,
                extension: ext,
            } => {
                match kind {
                    SinglePartKind::Basic {
                        media_type,
                        subtype,
                    } => {
                        self.string(media_type.as_bytes());
                        self.sp();
                        self.string(subtype.as_bytes());
                        self.sp();
                        self.body_fields(fields);
                    }
                    SinglePartKind::Text { subtype, lines } => {
                        self.str("\"TEXT\" ");
                        self.string(subtype.as_bytes());
                        self.sp();
                        self.body_fields(fields);
                        self.sp();
                        self.num(lines);
                    }
                    SinglePartKind::Message {
                        subtype,
                        envelope,
                        body,
                        lines,
                    } => {
                        self.str("\"MESSAGE\" ");
                        self.string(subtype.as_bytes());
                        self.sp();
                        self.body_fields(fields);
                        self.sp();
                        self.envelope(envelope);
                        self.sp();
                        self.body(body, extension);
                        self.sp();
                        self.num(lines);
                    }
                }
                // body-ext-1part = body-fld-md5 [SP body-fld-dsp [SP body-fld-lang
                //                  [SP body-fld-loc *(SP body-extension)]]]
                if let (true, Some(ext)) = (extension, ext) {
                    self.sp();
                    self.nstring(ext.md5.as_deref().map(str::as_bytes));
                    self.body_ext_common(
                        ext.disposition.as_ref(),
                        &ext.language,
                        ext.location.as_deref(),
                        &ext.extensions,
                    );
                }
            }
            BodyStructure::Multi {
                parts,
                subtype,
                extension: ext,
            } => {
                for part in parts {
                    self.body(part, extension);
                }
                self.sp();
                self.string(subtype.as_bytes());
                // body-ext-mpart = body-fld-param [SP body-fld-dsp [SP body-fld-lang
                //                  [SP body-fld-loc *(SP body-extension)]]]
                if let (true, Some(ext)) = (extension, ext) {
                    self.sp();
                    self.body_params(&ext.params);
                    self.body_ext_common(
                        ext.disposition.as_ref(),
                        &ext.language,
                        ext.location.as_deref(),
                        &ext.extensions,
                    );
                }
            }
        }
        self.byte(b')');
    }

    fn body_ext_common(
        &mut self,
        disposition: Option<&Disposition>,
        language: &[String],
        location: Option<&str>,
        extensions: &[BodyExtension],
    ) {
        // body-fld-dsp = "(" string SP body-fld-param ")" / nil
        self.sp();
        match disposition {
            Some(d) => {
                self.byte(b'(');
                self.string(d.kind.as_bytes());
                self.sp();
                self.body_params(&d.params);
                self.byte(b')');
            }
            None => self.str("NIL"),
        }
        // body-fld-lang = nstring / "(" string *(SP string) ")"
        self.sp();
        match language {
            [] => self.str("NIL"),
            [one] => self.string(one.as_bytes()),
            many => self.list(many, |w, l| w.string(l.as_bytes())),
        }
        // body-fld-loc = nstring
        self.sp();
        self.nstring(location.map(str::as_bytes));
        for ext in extensions {
            self.sp();
            self.body_extension(ext);
        }
    }

    // body-extension = nstring / number64 / "(" body-extension *(SP body-extension) ")"
    fn body_extension(&mut self, ext: &BodyExtension) {
        match ext {
            BodyExtension::String(s) => self.nstring(s.as_deref().map(str::as_bytes)),
            BodyExtension::Number(n) => self.num(n),
            BodyExtension::List(items) if items.is_empty() => self.str("NIL"),
            BodyExtension::List(items) => self.list(items, |w, e| w.body_extension(e)),
        }
    }

    // body-fields = body-fld-param SP body-fld-id SP body-fld-desc SP body-fld-enc SP
    //               body-fld-octets
    fn body_fields(&mut self, f: &BodyFields) {
        self.body_params(&f.params);
        self.sp();
        self.nstring(f.id.as_deref().map(str::as_bytes));
        self.sp();
        self.nstring(f.description.as_deref().map(str::as_bytes));
        self.sp();
        self.string(f.encoding.as_bytes());
        self.sp();
        self.num(f.size);
    }

    // body-fld-param = "(" string SP string *(SP string SP string) ")" / nil
    fn body_params(&mut self, params: &[(String, String)]) {
        if params.is_empty() {
            self.str("NIL");
            return;
        }
        self.list(params, |w, (k, v)| {
            w.string(k.as_bytes());
            w.sp();
            w.string(v.as_bytes());
        });
    }
}
