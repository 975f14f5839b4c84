//! Encryption at rest under the server's key. Small values (imported credentials,
//! records, target secrets) are sealed with AES-256-GCM and a random nonce, bound to a
//! context string. Files (uploaded exports) are sealed in 64 KiB chunks with the STREAM
//! construction, so memory stays flat whatever their size and a truncated, reordered or
//! altered file fails to open instead of reading short.

use crate::security::random_bytes;
use aes_gcm::{
    Aes256Gcm, KeyInit, Nonce,
    aead::{
        Aead, AeadInPlace, Payload,
        stream::{DecryptorBE32, EncryptorBE32},
    },
};
use std::io::{self, Read, Write};

const MAGIC: &[u8; 8] = b"FERRYv1\0";
/// Plaintext bytes per sealed chunk.
pub const CHUNK: usize = 64 * 1024;
const TAG: usize = 16;
/// STREAM's nonce: 12 bytes less its 4-byte counter and 1-byte last-chunk flag.
const STREAM_NONCE: usize = 7;

#[derive(Debug, thiserror::Error)]
pub enum VaultError {
    #[error("the data was altered, truncated, or sealed under another key")]
    Tampered,
    #[error("not a sealed Ferry file")]
    NotSealed,
    #[error("{0}")]
    Io(#[from] io::Error),
}

impl From<VaultError> for io::Error {
    fn from(err: VaultError) -> Self {
        match err {
            VaultError::Io(e) => e,
            other => io::Error::new(io::ErrorKind::InvalidData, other),
        }
    }
}

/// HMAC-SHA-256 under a 32-byte key: HMAC pads a key shorter than its 64-byte block
/// with zeros, so the padded block is the same key (and needs no fallible length check).
fn hmac_with(key: &[u8; 32]) -> hmac::Hmac<sha2::Sha256> {
    let mut block = [0u8; 64];
    block[..32].copy_from_slice(key);
    <hmac::Hmac<sha2::Sha256> as hmac::digest::KeyInit>::new(&block.into())
}

#[derive(Clone)]
pub struct Vault {
    cipher: Aes256Gcm,
    /// The key of search digests, derived from the server key so that it is never
    /// the encryption key itself.
    index_key: [u8; 32],
    /// The key that signs the password service's access tokens, derived apart from
    /// the search key so that no stored digest can ever be a valid signature.
    token_key: [u8; 32],
}

impl Vault {
    pub fn new(key: &[u8; 32]) -> Self {
        use hmac::Mac as _;
        let derived = |purpose: &[u8]| -> [u8; 32] {
            let mut derive = hmac_with(key);
            derive.update(purpose);
            derive.finalize().into_bytes().into()
        };
        Self {
            cipher: Aes256Gcm::new(key.into()),
            index_key: derived(b"ferry search digest v1"),
            token_key: derived(b"ferry access token v1"),
        }
    }

    /// The full HMAC-SHA-256 of `payload` under the token key.
    pub fn sign(&self, payload: &[u8]) -> [u8; 32] {
        use hmac::Mac as _;
        let mut mac = hmac_with(&self.token_key);
        mac.update(payload);
        mac.finalize().into_bytes().into()
    }

    /// Whether `signature` is `payload`'s, compared in constant time.
    pub fn verify_signature(&self, payload: &[u8], signature: &[u8]) -> bool {
        use hmac::Mac as _;
        let mut mac = hmac_with(&self.token_key);
        mac.update(payload);
        mac.verify_slice(signature).is_ok()
    }

    /// A keyed digest (HMAC-SHA-256, 128 bits in hex) of `value` in `context`: equal
    /// values give equal digests, and nobody without the server key can test a guess.
    pub fn digest(&self, context: &[u8], value: &[u8]) -> String {
        use hmac::Mac as _;
        let mut mac = hmac_with(&self.index_key);
        mac.update(context);
        mac.update(&[0]);
        mac.update(value);
        mac.finalize().into_bytes()[..16]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }

    /// `nonce || ciphertext`, authenticated together with `context` (for example the
    /// table and id the value belongs to, so it cannot be moved to another row).
    pub fn seal(&self, plaintext: &[u8], context: &[u8]) -> Vec<u8> {
        // Values are sealed by the million when exports are read: the nonce comes from
        // the thread's CSPRNG (ChaCha, seeded and reseeded from the OS) rather than a
        // system call each.
        let nonce: [u8; 12] = rand::random();
        // nonce ‖ ciphertext ‖ tag, encrypted where it lies: one buffer, one copy.
        let mut out = Vec::with_capacity(nonce.len() + plaintext.len() + TAG);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(plaintext);
        // Encryption fails only for inputs over 64 GiB.
        #[allow(clippy::expect_used)]
        let tag = self
            .cipher
            .encrypt_in_place_detached(Nonce::from_slice(&nonce), context, &mut out[nonce.len()..])
            .expect("AES-GCM input within limits");
        out.extend_from_slice(&tag);
        out
    }

    pub fn open(&self, sealed: &[u8], context: &[u8]) -> Result<Vec<u8>, VaultError> {
        if sealed.len() < 12 + TAG {
            return Err(VaultError::Tampered);
        }
        let (nonce, body) = sealed.split_at(12);
        self.cipher
            .decrypt(
                Nonce::from_slice(nonce),
                Payload {
                    msg: body,
                    aad: context,
                },
            )
            .map_err(|_| VaultError::Tampered)
    }

    /// Seals everything written to it into `out`; call [`SealedWriter::finish`] at the end.
    pub fn writer<W: Write>(&self, mut out: W) -> io::Result<SealedWriter<W>> {
        let nonce = random_bytes::<STREAM_NONCE>();
        out.write_all(MAGIC)?;
        out.write_all(&nonce)?;
        Ok(SealedWriter {
            out,
            encryptor: Some(EncryptorBE32::from_aead(
                self.cipher.clone(),
                nonce.as_slice().into(),
            )),
            buffer: Vec::with_capacity(CHUNK * 2),
        })
    }

    /// Opens a file sealed by [`Vault::writer`] for reading.
    pub fn reader<R: Read>(&self, mut input: R) -> Result<SealedReader<R>, VaultError> {
        let mut header = [0u8; 8 + STREAM_NONCE];
        input
            .read_exact(&mut header)
            .map_err(|_| VaultError::NotSealed)?;
        if &header[..8] != MAGIC {
            return Err(VaultError::NotSealed);
        }
        Ok(SealedReader {
            input,
            decryptor: Some(DecryptorBE32::from_aead(
                self.cipher.clone(),
                header[8..].into(),
            )),
            sealed: Vec::with_capacity(CHUNK + TAG + 1),
            plain: Vec::new(),
            position: 0,
        })
    }
}

pub struct SealedWriter<W: Write> {
    out: W,
    encryptor: Option<EncryptorBE32<Aes256Gcm>>,
    buffer: Vec<u8>,
}

impl<W: Write> SealedWriter<W> {
    fn seal_full_chunks(&mut self) -> io::Result<()> {
        // A chunk is sealed only once more data follows it: the last one is sealed
        // differently, and only `finish` knows which one that is.
        while self.buffer.len() > CHUNK {
            let encryptor = self.encryptor.as_mut().ok_or_else(finished)?;
            let sealed = encryptor
                .encrypt_next(&self.buffer[..CHUNK])
                .map_err(|_| io::Error::other("chunk encryption failed"))?;
            self.out.write_all(&sealed)?;
            self.buffer.drain(..CHUNK);
        }
        Ok(())
    }

    /// Seals the last chunk and returns the underlying writer.
    pub fn finish(mut self) -> io::Result<W> {
        self.seal_full_chunks()?;
        let encryptor = self.encryptor.take().ok_or_else(finished)?;
        let sealed = encryptor
            .encrypt_last(self.buffer.as_slice())
            .map_err(|_| io::Error::other("chunk encryption failed"))?;
        self.out.write_all(&sealed)?;
        self.out.flush()?;
        Ok(self.out)
    }
}

fn finished() -> io::Error {
    io::Error::other("the sealed file is already finished")
}

impl<W: Write> Write for SealedWriter<W> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.buffer.extend_from_slice(data);
        self.seal_full_chunks()?;
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

pub struct SealedReader<R: Read> {
    input: R,
    decryptor: Option<DecryptorBE32<Aes256Gcm>>,
    sealed: Vec<u8>,
    plain: Vec<u8>,
    position: usize,
}

impl<R: Read> SealedReader<R> {
    /// Reads and opens the next chunk; `false` once the last one was read.
    fn next_chunk(&mut self) -> Result<bool, VaultError> {
        if self.decryptor.is_none() {
            return Ok(false);
        }
        // Fill up to one full sealed chunk plus one byte: the extra byte tells whether
        // this chunk is the last.
        let want = CHUNK + TAG + 1;
        while self.sealed.len() < want {
            let mut buf = vec![0u8; want - self.sealed.len()];
            let n = self.input.read(&mut buf)?;
            if n == 0 {
                break;
            }
            self.sealed.extend_from_slice(&buf[..n]);
        }
        self.position = 0;
        if self.sealed.len() == want {
            let rest = self.sealed.split_off(CHUNK + TAG);
            let decryptor = self.decryptor.as_mut().ok_or(VaultError::Tampered)?;
            self.plain = decryptor
                .decrypt_next(self.sealed.as_slice())
                .map_err(|_| VaultError::Tampered)?;
            self.sealed = rest;
        } else {
            let decryptor = self.decryptor.take().ok_or(VaultError::Tampered)?;
            self.plain = decryptor
                .decrypt_last(self.sealed.as_slice())
                .map_err(|_| VaultError::Tampered)?;
            self.sealed.clear();
        }
        Ok(true)
    }
}

impl<R: Read> Read for SealedReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.position == self.plain.len() {
            if !self.next_chunk()? {
                return Ok(0);
            }
        }
        let n = buf.len().min(self.plain.len() - self.position);
        buf[..n].copy_from_slice(&self.plain[self.position..self.position + n]);
        self.position += n;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vault() -> Vault {
        Vault::new(&[7u8; 32])
    }

    fn seal_file(data: &[u8]) -> Vec<u8> {
        let mut writer = vault().writer(Vec::new()).unwrap();
        // Odd write sizes cross chunk boundaries.
        for piece in data.chunks(7_777) {
            writer.write_all(piece).unwrap();
        }
        writer.finish().unwrap()
    }

    fn open_file(sealed: &[u8]) -> Result<Vec<u8>, io::Error> {
        let mut out = Vec::new();
        vault()
            .reader(sealed)
            .map_err(io::Error::from)?
            .read_to_end(&mut out)?;
        Ok(out)
    }

    #[test]
    fn files_of_every_size_round_trip() {
        for size in [
            0,
            1,
            CHUNK - 1,
            CHUNK,
            CHUNK + 1,
            3 * CHUNK,
            3 * CHUNK + 123,
        ] {
            let data: Vec<u8> = (0..size).map(|i| (i % 251) as u8).collect();
            let sealed = seal_file(&data);
            assert!(
                !sealed
                    .windows(64)
                    .any(|w| data.len() >= 64 && w == &data[..64]),
                "plaintext visible"
            );
            assert_eq!(open_file(&sealed).unwrap(), data, "size {size}");
        }
    }

    #[test]
    fn truncated_altered_or_foreign_files_fail_to_open() {
        let data = vec![42u8; 2 * CHUNK + 10];
        let sealed = seal_file(&data);
        let cut_at_chunk = &sealed[..8 + STREAM_NONCE + CHUNK + TAG];
        assert!(
            open_file(cut_at_chunk).is_err(),
            "a file cut at a chunk boundary is not whole"
        );
        assert!(open_file(&sealed[..sealed.len() - 1]).is_err());
        let mut altered = sealed.clone();
        altered[100] ^= 1;
        assert!(open_file(&altered).is_err());
        let other = Vault::new(&[8u8; 32]);
        let mut out = Vec::new();
        assert!(
            other
                .reader(&sealed[..])
                .unwrap()
                .read_to_end(&mut out)
                .is_err()
        );
        assert!(matches!(
            vault().reader(&b"plain text file"[..]),
            Err(VaultError::NotSealed)
        ));
    }

    #[test]
    fn digests_depend_on_the_key_and_the_context() {
        let other = Vault::new(&[8u8; 32]);
        let v = vault();
        assert_eq!(v.digest(b"p", b"ann"), v.digest(b"p", b"ann"));
        assert_ne!(v.digest(b"p", b"ann"), v.digest(b"q", b"ann"));
        assert_ne!(v.digest(b"p", b"ann"), other.digest(b"p", b"ann"));
        assert_eq!(v.digest(b"p", b"ann").len(), 32);
    }

    #[test]
    fn values_are_bound_to_their_context() {
        let sealed = vault().seal(b"$2b$10$secret", b"credential:u1");
        assert_eq!(
            vault().open(&sealed, b"credential:u1").unwrap(),
            b"$2b$10$secret"
        );
        assert!(vault().open(&sealed, b"credential:u2").is_err());
        assert_ne!(
            vault().seal(b"x", b"c"),
            vault().seal(b"x", b"c"),
            "fresh nonce each time"
        );
    }
}
