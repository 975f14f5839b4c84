//! How a credential's bytes (salts, hashes, keys) are written in stored records: as
//! standard base64 text, a third the size of the JSON number arrays first used, which
//! are still read so records stored before stay readable.

use base64::{Engine, engine::general_purpose::STANDARD};
use serde::{Deserializer, Serializer, de};
use std::fmt;

pub fn serialize<S: Serializer>(bytes: &[u8], serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(&STANDARD.encode(bytes))
}

pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<u8>, D::Error> {
    deserializer.deserialize_any(Bytes)
}

struct Bytes;

impl<'de> de::Visitor<'de> for Bytes {
    type Value = Vec<u8>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("base64 text or an array of bytes")
    }

    fn visit_str<E: de::Error>(self, text: &str) -> Result<Vec<u8>, E> {
        STANDARD
            .decode(text)
            .map_err(|_| E::custom("the bytes are not valid base64"))
    }

    fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<u8>, A::Error> {
        let mut bytes = Vec::with_capacity(seq.size_hint().unwrap_or(0));
        while let Some(byte) = seq.next_element::<u8>()? {
            bytes.push(byte);
        }
        Ok(bytes)
    }
}

#[cfg(test)]
mod tests {
    use serde::{Deserialize, Serialize};

    #[derive(Serialize, Deserialize, PartialEq, Debug)]
    struct Holder {
        #[serde(with = "super")]
        salt: Vec<u8>,
    }

    #[test]
    fn bytes_are_written_as_base64_and_read_in_both_forms() {
        let holder = Holder {
            salt: vec![0, 1, 254, 255],
        };
        let json = serde_json::to_string(&holder).unwrap();
        assert_eq!(json, r#"{"salt":"AAH+/w=="}"#);
        assert_eq!(serde_json::from_str::<Holder>(&json).unwrap(), holder);
        let old: Holder = serde_json::from_str(r#"{"salt":[0,1,254,255]}"#).unwrap();
        assert_eq!(old, holder);
        assert!(serde_json::from_str::<Holder>(r#"{"salt":"not base64!"}"#).is_err());
        assert!(serde_json::from_str::<Holder>(r#"{"salt":[256]}"#).is_err());
    }
}
