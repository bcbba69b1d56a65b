//! HTML → text and links, enough for tokenizing and URL rules. Not a conforming HTML parser: spam
//! HTML is broken on purpose, so this is a forgiving single pass that never fails — tags are
//! dropped, `<script>`/`<style>` content skipped, common entities decoded, and every `<a href>`
//! kept together with its visible text.

/// What the tokenizer and the URL rules need from an HTML part.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct HtmlText {
    /// The visible text, tags replaced by spaces.
    pub text: String,
    /// `<a href>` targets with their visible text.
    pub links: Vec<Link>,
    /// `src` of `<img>` elements.
    pub images: Vec<String>,
    /// Lowercased names of the elements seen (`font`, `table`, …), once each.
    pub tags: Vec<String>,
}

/// One hyperlink.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Link {
    pub href: String,
    pub text: String,
}

/// Converts HTML to text, collecting links, images and element names.
pub(crate) fn parse(html: &str) -> HtmlText {
    let mut out = HtmlText::default();
    let mut rest = html;
    // The link whose visible text is being collected, as (href, text).
    let mut open_link: Option<(String, String)> = None;
    while let Some(lt) = rest.find('<') {
        push_text(&rest[..lt], &mut out.text, open_link.as_mut());
        rest = &rest[lt + 1..];
        if let Some(after) = rest.strip_prefix("!--") {
            rest = after.find("-->").map_or("", |end| &after[end + 3..]);
            continue;
        }
        let Some(gt) = rest.find('>') else {
            rest = "";
            break;
        };
        let tag = &rest[..gt];
        rest = &rest[gt + 1..];
        let closing = tag.starts_with('/');
        let name: String = tag
            .trim_start_matches('/')
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric())
            .collect::<String>()
            .to_ascii_lowercase();
        if name.is_empty() {
            continue;
        }
        out.text.push(' ');
        if !out.tags.contains(&name) && out.tags.len() < 64 {
            out.tags.push(name.clone());
        }
        match (name.as_str(), closing) {
            ("script" | "style", false) => {
                // Skip to the matching end tag; its content is not visible text.
                let end = format!("</{name}");
                rest = find_ascii_ci(rest, &end).map_or("", |i| &rest[i..]);
            }
            ("a", false) => {
                if let Some((href, text)) = open_link.take() {
                    out.links.push(Link { href, text });
                }
                if let Some(href) = attribute(tag, "href") {
                    open_link = Some((href, String::new()));
                }
            }
            ("a", true) => {
                if let Some((href, text)) = open_link.take() {
                    out.links.push(Link { href, text });
                }
            }
            ("img", false) => {
                if let Some(src) = attribute(tag, "src") {
                    out.images.push(src);
                }
            }
            _ => {}
        }
    }
    push_text(rest, &mut out.text, open_link.as_mut());
    if let Some((href, text)) = open_link {
        out.links.push(Link { href, text });
    }
    out
}

fn push_text(raw: &str, text: &mut String, link: Option<&mut (String, String)>) {
    let decoded = decode_entities(raw);
    if let Some((_, link_text)) = link {
        link_text.push_str(&decoded);
    }
    text.push_str(&decoded);
}

/// Byte index of `needle` (ASCII) in `haystack`, ignoring ASCII case.
fn find_ascii_ci(haystack: &str, needle: &str) -> Option<usize> {
    if needle.is_empty() {
        return Some(0);
    }
    haystack
        .as_bytes()
        .windows(needle.len())
        .position(|w| w.eq_ignore_ascii_case(needle.as_bytes()))
}

/// The value of attribute `name` inside a tag's text (`a href="x" class=y`), entity-decoded.
fn attribute(tag: &str, name: &str) -> Option<String> {
    let lower = tag.to_ascii_lowercase();
    let mut from = 0;
    while let Some(i) = lower[from..].find(name) {
        let start = from + i;
        from = start + name.len();
        // Must be a whole attribute name: preceded by whitespace, followed by `=`.
        let before_ok = lower[..start]
            .chars()
            .next_back()
            .is_some_and(char::is_whitespace);
        let after = lower[from..].trim_start();
        if !before_ok || !after.starts_with('=') {
            continue;
        }
        let value_start = tag.len() - after.len() + 1;
        let value = tag[value_start..].trim_start();
        let v = match value.chars().next() {
            Some(q @ ('"' | '\'')) => value[1..].split(q).next().unwrap_or(""),
            _ => value.split(char::is_whitespace).next().unwrap_or(""),
        };
        return Some(decode_entities(v.trim()));
    }
    None
}

/// Decodes `&amp;`-style named entities (the common ones) and numeric ones (`&#65;`, `&#x41;`).
/// Anything else is left as written.
pub(crate) fn decode_entities(s: &str) -> String {
    if !s.contains('&') {
        return s.to_owned();
    }
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(amp) = rest.find('&') {
        out.push_str(&rest[..amp]);
        rest = &rest[amp..];
        let entity_end = rest
            .char_indices()
            .take(12)
            .find(|&(_, c)| c == ';')
            .map(|(i, _)| i);
        let decoded = entity_end.and_then(|end| entity(&rest[1..end]).map(|c| (c, end)));
        match decoded {
            Some((c, end)) => {
                out.push(c);
                rest = &rest[end + 1..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

fn entity(name: &str) -> Option<char> {
    if let Some(num) = name.strip_prefix('#') {
        let code = match num.strip_prefix(['x', 'X']) {
            Some(hex) => u32::from_str_radix(hex, 16).ok()?,
            None => num.parse().ok()?,
        };
        return char::from_u32(code);
    }
    Some(match name {
        "amp" => '&',
        "lt" => '<',
        "gt" => '>',
        "quot" => '"',
        "apos" => '\'',
        "nbsp" => ' ',
        "copy" => '©',
        "reg" => '®',
        "euro" => '€',
        "pound" => '£',
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_become_spaces_and_script_and_comments_vanish() {
        let h = parse(
            "<p>Buy<b>now</b></p><!-- hidden <a href=x> --><script>var x='<p>';</script>\
             <STYLE>p{}</STYLE>ok &amp; cheap&nbsp;&#x41;&#66;&bogus;",
        );
        let words: Vec<&str> = h.text.split_whitespace().collect();
        assert_eq!(words, ["Buy", "now", "ok", "&", "cheap", "AB&bogus;"]);
        assert!(h.links.is_empty());
        assert_eq!(h.tags, ["p", "b", "script", "style"]);
    }

    #[test]
    fn links_keep_their_visible_text_and_images_their_source() {
        let h = parse(
            "<a class=x HREF=\"http://evil.test/?a=1&amp;b=2\">https://bank.example</a> \
             <a href='/rel'>one <i>two</i></a><img alt=\"\" src=http://img.test/p.gif><a href=x>open",
        );
        assert_eq!(
            h.links,
            [
                Link {
                    href: "http://evil.test/?a=1&b=2".into(),
                    text: "https://bank.example".into()
                },
                Link {
                    href: "/rel".into(),
                    text: "one two".into()
                },
                Link {
                    href: "x".into(),
                    text: "open".into()
                },
            ]
        );
        assert_eq!(h.images, ["http://img.test/p.gif"]);
    }

    #[test]
    fn unterminated_markup_never_panics() {
        for s in [
            "<",
            "<a href=\"",
            "&#",
            "&#xffffffff;",
            "<script>",
            "<!--",
            "a<b",
            "&",
        ] {
            let _ = parse(s);
        }
    }
}
