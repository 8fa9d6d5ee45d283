//! CPIX 2.3 (DASH-IF Content Protection Information Exchange): the document a key server and
//! a packager exchange, read and written. rungs reads the content keys (clear `PlainValue`s),
//! the usage rules that say which tracks each key protects, and each DRM system's `pssh`; it
//! writes the same for the keys a title used ([`document`]), and the request of a SPEKE v2
//! exchange ([`request`], [`crate::speke`]).
//!
//! Usage rules map onto rungs' classes of track: `intendedTrackType` (`AUDIO`, `SD`, `HD`,
//! `UHD`, `UHD1`, `UHD2`, `ALL`) when given, else the filters: an `AudioFilter` is audio, and a
//! `VideoFilter` takes each class whose typical picture (640×360, 1920×1080, 3840×2160) its
//! `minPixels`/`maxPixels` admit.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use base64::Engine as _;

use crate::cenc::{self, ContentKey, Scheme};
use crate::dash::xml;
use crate::drm::{self, KeyPolicy, TrackClass};

/// The CPIX namespace.
pub const NS: &str = "urn:dashif:org:cpix";
/// The PSKC namespace (the key values).
pub const PSKC: &str = "urn:ietf:params:xml:ns:keyprov:pskc";

/// Why a CPIX document is refused, with where in it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CpixError {
    /// Not XML.
    #[error("CPIX: {0}")]
    Xml(String),
    /// XML, but not a CPIX document rungs can use.
    #[error("CPIX line {line}, column {column}: {reason}")]
    At {
        /// Line (from 1).
        line: u32,
        /// Column (from 1).
        column: u32,
        /// What is wrong.
        reason: String,
    },
    /// The document as a whole does not give every track a key.
    #[error("CPIX: {0}")]
    Keys(String),
}

/// One content key of a document: its ID, and its value when the document carries it.
#[derive(Clone, PartialEq, Eq)]
pub struct Key {
    /// The key ID.
    pub kid: [u8; 16],
    /// The key, when given in the clear.
    pub value: Option<[u8; 16]>,
    /// The scheme the key is for, when said.
    pub scheme: Option<Scheme>,
}

impl std::fmt::Debug for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Key")
            .field("kid", &cenc::uuid(&self.kid))
            .field("value", &self.value.map(|_| "(hidden)"))
            .field("scheme", &self.scheme)
            .finish()
    }
}

/// One DRM system's signalling for one key.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct System {
    /// The key ID.
    pub kid: [u8; 16],
    /// The system ID.
    pub system: [u8; 16],
    /// The whole `pssh` box, when given.
    pub pssh: Option<Vec<u8>>,
}

/// A parsed CPIX document.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Document {
    /// The content's ID.
    pub content_id: Option<String>,
    /// The content keys.
    pub keys: Vec<Key>,
    /// The DRM systems' signalling.
    pub systems: Vec<System>,
    /// Which classes of track each key protects.
    pub rules: Vec<([u8; 16], Vec<TrackClass>)>,
}

/// Where `node` is, as an error.
fn at(doc: &roxmltree::Document<'_>, node: roxmltree::Node<'_, '_>, reason: String) -> CpixError {
    let p = doc.text_pos_at(node.range().start);
    CpixError::At {
        line: p.row,
        column: p.col,
        reason,
    }
}

/// A key ID attribute (UUID form, or 32 hex digits).
fn kid_of(
    doc: &roxmltree::Document<'_>,
    node: roxmltree::Node<'_, '_>,
) -> Result<[u8; 16], CpixError> {
    let text = node.attribute("kid").ok_or_else(|| {
        at(
            doc,
            node,
            format!("`{}` has no `kid`", node.tag_name().name()),
        )
    })?;
    drm::hex16(&text.replace('-', ""))
        .ok_or_else(|| at(doc, node, format!("kid `{text}` is not a UUID")))
}

/// Base64 text of an element, decoded.
fn base64_of(
    doc: &roxmltree::Document<'_>,
    node: roxmltree::Node<'_, '_>,
) -> Result<Vec<u8>, CpixError> {
    let text: String = node
        .text()
        .unwrap_or("")
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect();
    base64::engine::general_purpose::STANDARD
        .decode(text)
        .map_err(|e| {
            at(
                doc,
                node,
                format!("`{}` is not base64: {e}", node.tag_name().name()),
            )
        })
}

/// The classes a usage rule names.
fn classes_of(
    doc: &roxmltree::Document<'_>,
    rule: roxmltree::Node<'_, '_>,
) -> Result<Vec<TrackClass>, CpixError> {
    if let Some(t) = rule.attribute("intendedTrackType") {
        return match t.to_ascii_uppercase().as_str() {
            "AUDIO" => Ok(vec![TrackClass::Audio]),
            "SD" => Ok(vec![TrackClass::Sd]),
            "HD" => Ok(vec![TrackClass::Hd]),
            "UHD" | "UHD1" | "UHD2" => Ok(vec![TrackClass::Uhd]),
            "VIDEO" => Ok(vec![TrackClass::Sd, TrackClass::Hd, TrackClass::Uhd]),
            "ALL" => Ok(TrackClass::ALL.to_vec()),
            other => Err(at(
                doc,
                rule,
                format!(
                    "intendedTrackType `{other}` (expected AUDIO, SD, HD, UHD, UHD1, UHD2, VIDEO or ALL)"
                ),
            )),
        };
    }
    let mut out = Vec::new();
    for f in rule.children().filter(roxmltree::Node::is_element) {
        match f.tag_name().name() {
            "AudioFilter" => out.push(TrackClass::Audio),
            "VideoFilter" => {
                let bound = |name: &str| -> Result<Option<u64>, CpixError> {
                    f.attribute(name)
                        .map(|v| {
                            v.parse::<u64>()
                                .map_err(|_| at(doc, f, format!("{name} `{v}` is not a number")))
                        })
                        .transpose()
                };
                let (min, max) = (bound("minPixels")?, bound("maxPixels")?);
                for (class, pixels) in [
                    (TrackClass::Sd, 640 * 360),
                    (TrackClass::Hd, 1920 * 1080),
                    (TrackClass::Uhd, 3840 * 2160),
                ] {
                    if min.is_none_or(|m| pixels >= m) && max.is_none_or(|m| pixels <= m) {
                        out.push(class);
                    }
                }
            }
            _ => {}
        }
    }
    if out.is_empty() {
        return Err(at(
            doc,
            rule,
            "a usage rule with no track type and no filter rungs reads".into(),
        ));
    }
    Ok(out)
}

/// Reads a CPIX document.
pub fn parse(text: &str) -> Result<Document, CpixError> {
    let doc = roxmltree::Document::parse(text).map_err(|e| CpixError::Xml(e.to_string()))?;
    let root = doc.root_element();
    if root.tag_name().name() != "CPIX" || root.tag_name().namespace() != Some(NS) {
        return Err(at(
            &doc,
            root,
            format!(
                "the root is `{}`, not a CPIX document ({NS})",
                root.tag_name().name()
            ),
        ));
    }
    let mut out = Document {
        content_id: root.attribute("contentId").map(str::to_owned),
        ..Default::default()
    };
    let named =
        |n: roxmltree::Node<'_, '_>, name: &str| n.is_element() && n.tag_name().name() == name;
    for n in root.descendants() {
        if named(n, "ContentKey") {
            let kid = kid_of(&doc, n)?;
            let scheme = match n.attribute("commonEncryptionScheme") {
                None => None,
                Some(s) => Some(s.parse::<Scheme>().map_err(|e| at(&doc, n, e))?),
            };
            let value = match n.descendants().find(|c| named(*c, "PlainValue")) {
                None => {
                    if n.descendants().any(|c| named(c, "EncryptedValue")) {
                        return Err(at(&doc, n, "the key is encrypted (EncryptedValue); rungs reads clear keys (PlainValue) only".into()));
                    }
                    None
                }
                Some(v) => {
                    let bytes = base64_of(&doc, v)?;
                    Some(<[u8; 16]>::try_from(bytes.as_slice()).map_err(|_| {
                        at(
                            &doc,
                            v,
                            format!("a content key of {} bytes (expected 16)", bytes.len()),
                        )
                    })?)
                }
            };
            out.keys.push(Key { kid, value, scheme });
        } else if named(n, "DRMSystem") {
            let kid = kid_of(&doc, n)?;
            let id = n
                .attribute("systemId")
                .ok_or_else(|| at(&doc, n, "`DRMSystem` has no `systemId`".into()))?;
            let system = drm::hex16(&id.replace('-', ""))
                .ok_or_else(|| at(&doc, n, format!("systemId `{id}` is not a UUID")))?;
            let pssh = match n.children().find(|c| named(*c, "PSSH")) {
                Some(p) if p.text().is_some_and(|t| !t.trim().is_empty()) => {
                    Some(base64_of(&doc, p)?)
                }
                _ => None,
            };
            if let Some(p) = &pssh
                && (p.len() < 32 || &p[4..8] != b"pssh" || p[12..28] != system)
            {
                return Err(at(
                    &doc,
                    n,
                    "its PSSH is not a `pssh` box of its system".into(),
                ));
            }
            out.systems.push(System { kid, system, pssh });
        } else if named(n, "ContentKeyUsageRule") {
            let kid = kid_of(&doc, n)?;
            out.rules.push((kid, classes_of(&doc, n)?));
        }
    }
    if out.keys.is_empty() {
        return Err(at(&doc, root, "no ContentKey".into()));
    }
    Ok(out)
}

impl Document {
    /// The key policy the document gives: every rule's classes get its key, whose value the
    /// document must carry; with no rules, one key protects everything.
    pub fn policy(&self) -> Result<KeyPolicy, CpixError> {
        let value = |kid: &[u8; 16]| -> Result<ContentKey, CpixError> {
            let k = self.keys.iter().find(|k| k.kid == *kid).ok_or_else(|| {
                CpixError::Keys(format!(
                    "a usage rule names key {}, which is not in the ContentKeyList",
                    cenc::uuid(kid)
                ))
            })?;
            let key = k
                .value
                .ok_or_else(|| CpixError::Keys(format!("key {} has no value", cenc::uuid(kid))))?;
            Ok(ContentKey { kid: k.kid, key })
        };
        let mut keys = Vec::new();
        if self.rules.is_empty() {
            let [only] = self.keys.as_slice() else {
                return Err(CpixError::Keys(format!(
                    "{} keys and no ContentKeyUsageRuleList to say which tracks each protects",
                    self.keys.len()
                )));
            };
            let k = value(&only.kid)?;
            keys.extend(TrackClass::ALL.iter().map(|c| (*c, k.clone())));
        }
        for (kid, classes) in &self.rules {
            let k = value(kid)?;
            keys.extend(classes.iter().map(|c| (*c, k.clone())));
        }
        KeyPolicy::from_keys(keys).map_err(|e| CpixError::Keys(e.to_string()))
    }

    /// The `pssh` boxes the document gives for a key ID.
    pub fn pssh_of(&self, kid: &[u8; 16]) -> Vec<Vec<u8>> {
        self.systems
            .iter()
            .filter(|s| s.kid == *kid)
            .filter_map(|s| s.pssh.clone())
            .collect()
    }
}

/// A key of a document to write: its class, its ID, and its value when known.
type Entry = (TrackClass, [u8; 16], Option<[u8; 16]>);

/// The CPIX document of the keys a title used: each key with its value, its usage rules and
/// the `pssh` boxes `pssh_of` gives for it (each names its system).
pub fn document(
    content_id: &str,
    policy: &KeyPolicy,
    scheme: Scheme,
    pssh_of: &dyn Fn(&[u8; 16]) -> Vec<Vec<u8>>,
) -> String {
    let entries: Vec<Entry> = TrackClass::ALL
        .iter()
        .filter_map(|c| policy.key(*c).map(|k| (*c, k.kid, Some(k.key))))
        .collect();
    write(content_id, &entries, scheme, pssh_of)
}

/// A SPEKE request: the key IDs of each class with no values, and the systems whose `pssh`
/// the key server should give.
pub fn request(content_id: &str, kids: &[(TrackClass, [u8; 16])], scheme: Scheme) -> String {
    let entries: Vec<Entry> = kids.iter().map(|(c, k)| (*c, *k, None)).collect();
    write(content_id, &entries, scheme, &|kid| {
        drm::track_pssh(kid, scheme)
    })
}

/// Writes a CPIX 2.3 document of `(class, key ID, key)` entries: the keys (their values when
/// known), their DRM systems (with `pssh` when the values are known, empty to ask for them),
/// and their usage rules.
fn write(
    content_id: &str,
    entries: &[Entry],
    scheme: Scheme,
    pssh_of: &dyn Fn(&[u8; 16]) -> Vec<Vec<u8>>,
) -> String {
    let mut out = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<cpix:CPIX xmlns:cpix=\"{NS}\" xmlns:pskc=\"{PSKC}\" contentId=\"{}\" version=\"2.3\">\n  <cpix:ContentKeyList>\n",
        xml(content_id)
    );
    let mut classes: BTreeMap<[u8; 16], Vec<TrackClass>> = BTreeMap::new();
    let mut order: Vec<([u8; 16], Option<[u8; 16]>)> = Vec::new();
    for (c, kid, key) in entries {
        if !classes.contains_key(kid) {
            order.push((*kid, *key));
        }
        classes.entry(*kid).or_default().push(*c);
    }
    for (kid, key) in &order {
        let id = cenc::uuid(kid);
        if let Some(key) = key {
            let _ = writeln!(
                out,
                "    <cpix:ContentKey kid=\"{id}\" commonEncryptionScheme=\"{}\">\n      <cpix:Data>\n        <pskc:Secret>\n          <pskc:PlainValue>{}</pskc:PlainValue>\n        </pskc:Secret>\n      </cpix:Data>\n    </cpix:ContentKey>",
                scheme.name(),
                drm::base64(key)
            );
        } else {
            let _ = writeln!(
                out,
                "    <cpix:ContentKey kid=\"{id}\" commonEncryptionScheme=\"{}\"/>",
                scheme.name()
            );
        }
    }
    out.push_str("  </cpix:ContentKeyList>\n  <cpix:DRMSystemList>\n");
    for (kid, key) in &order {
        let id = cenc::uuid(kid);
        for pssh in pssh_of(kid) {
            let Some(system) = pssh.get(12..28).and_then(|s| <[u8; 16]>::try_from(s).ok()) else {
                continue;
            };
            let system = &system;
            if key.is_some() {
                let _ = writeln!(
                    out,
                    "    <cpix:DRMSystem kid=\"{id}\" systemId=\"{}\">\n      <cpix:PSSH>{}</cpix:PSSH>\n    </cpix:DRMSystem>",
                    cenc::uuid(system),
                    drm::base64(&pssh)
                );
            } else {
                let _ = writeln!(
                    out,
                    "    <cpix:DRMSystem kid=\"{id}\" systemId=\"{}\">\n      <cpix:PSSH/>\n    </cpix:DRMSystem>",
                    cenc::uuid(system)
                );
            }
        }
    }
    out.push_str("  </cpix:DRMSystemList>\n  <cpix:ContentKeyUsageRuleList>\n");
    for (kid, _) in &order {
        for c in &classes[kid] {
            let _ = writeln!(
                out,
                "    <cpix:ContentKeyUsageRule kid=\"{}\" intendedTrackType=\"{}\"/>",
                cenc::uuid(kid),
                c.name().to_ascii_uppercase()
            );
        }
    }
    out.push_str("  </cpix:ContentKeyUsageRuleList>\n</cpix:CPIX>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const KID_A: &str = "0123456789abcdef0123456789abcdef";
    const KID_B: &str = "fedcba9876543210fedcba9876543210";
    const KEY: &str = "00112233445566778899aabbccddeeff";

    fn studio() -> KeyPolicy {
        KeyPolicy::parse(&[
            format!("{KID_A}:{KEY}:audio,sd"),
            format!("{KID_B}:{KEY}:hd,uhd"),
        ])
        .unwrap()
    }

    #[test]
    fn a_written_document_reads_back_to_the_same_policy() {
        let p = studio();
        let text = document("title-1", &p, Scheme::Cbcs, &|k| {
            drm::track_pssh(k, Scheme::Cbcs)
        });
        let doc = parse(&text).unwrap();
        assert_eq!(doc.content_id.as_deref(), Some("title-1"));
        assert_eq!(doc.policy().unwrap(), p);
        let a = drm::hex16(KID_A).unwrap();
        assert_eq!(doc.pssh_of(&a).len(), 3);
        // Without values (a request), the policy cannot be made: the keys are missing.
        let kids: Vec<(TrackClass, [u8; 16])> = TrackClass::ALL
            .iter()
            .map(|c| (*c, p.key(*c).unwrap().kid))
            .collect();
        let request = parse(&request("t", &kids, Scheme::Cenc)).unwrap();
        assert!(request.keys.iter().all(|k| k.value.is_none()));
        assert!(
            request
                .policy()
                .unwrap_err()
                .to_string()
                .contains("has no value")
        );
    }

    #[test]
    fn filters_and_track_types_map_onto_classes() {
        let key = drm::base64(&drm::hex16(KEY).unwrap());
        let doc = format!(
            r#"<?xml version="1.0"?>
<CPIX xmlns="urn:dashif:org:cpix" xmlns:pskc="urn:ietf:params:xml:ns:keyprov:pskc">
 <ContentKeyList>
  <ContentKey kid="01234567-89ab-cdef-0123-456789abcdef"><Data><pskc:Secret><pskc:PlainValue>{key}</pskc:PlainValue></pskc:Secret></Data></ContentKey>
  <ContentKey kid="fedcba98-7654-3210-fedc-ba9876543210"><Data><pskc:Secret><pskc:PlainValue>{key}</pskc:PlainValue></pskc:Secret></Data></ContentKey>
 </ContentKeyList>
 <ContentKeyUsageRuleList>
  <ContentKeyUsageRule kid="01234567-89ab-cdef-0123-456789abcdef"><AudioFilter/></ContentKeyUsageRule>
  <ContentKeyUsageRule kid="01234567-89ab-cdef-0123-456789abcdef"><VideoFilter maxPixels="442368"/></ContentKeyUsageRule>
  <ContentKeyUsageRule kid="fedcba98-7654-3210-fedc-ba9876543210"><VideoFilter minPixels="442369"/></ContentKeyUsageRule>
 </ContentKeyUsageRuleList>
</CPIX>"#
        );
        assert_eq!(parse(&doc).unwrap().policy().unwrap(), studio());
        // Faults, each with its place.
        let e = parse(&doc.replace("maxPixels=\"442368\"", "maxPixels=\"lots\"")).unwrap_err();
        assert!(matches!(e, CpixError::At { line: 9, .. }), "{e}");
        let e = parse(&doc.replace(&key, "AAEC")).unwrap_err().to_string();
        assert!(e.contains("line 4") && e.contains("3 bytes"), "{e}");
        let e = parse(&doc.replace("<AudioFilter/>", ""))
            .unwrap_err()
            .to_string();
        assert!(e.contains("no track type"), "{e}");
        let e = parse(&doc.replace("urn:dashif:org:cpix", "urn:other"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("not a CPIX document"), "{e}");
        assert!(matches!(parse("<CPIX"), Err(CpixError::Xml(_))));
        // A rule naming a key the list lacks; two keys and no rules.
        let e = parse(&doc.replace(
            "fedcba98-7654-3210-fedc-ba9876543210\"><VideoFilter",
            "11111111-7654-3210-fedc-ba9876543210\"><VideoFilter",
        ))
        .unwrap()
        .policy()
        .unwrap_err()
        .to_string();
        assert!(e.contains("not in the ContentKeyList"), "{e}");
        let i = doc.find(" <ContentKeyUsageRuleList>").unwrap();
        let j =
            doc.find("</ContentKeyUsageRuleList>").unwrap() + "</ContentKeyUsageRuleList>".len();
        let e = parse(&format!("{}{}", &doc[..i], &doc[j..]))
            .unwrap()
            .policy()
            .unwrap_err()
            .to_string();
        assert!(e.contains("2 keys and no ContentKeyUsageRuleList"), "{e}");
        // Keys never show in errors or Debug output.
        let d = format!("{:?}", parse(&doc).unwrap());
        assert!(!d.contains(&key), "{d}");
    }
}
