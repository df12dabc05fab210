//! Writing `.npz`: a stored (uncompressed) zip of `.npy` members, as
//! `numpy.savez` makes, streamed one tensor at a time, with ZIP64 records
//! when a member or the archive passes 4 GiB.

use crate::{header, rules};
use std::path::Path;
use tensorcast_core::code;
use tensorcast_core::{
    check_size, Error, FileTarget, FormatError, Plan, Result, Sink, TensorData, TensorInfo, WriteTarget,
};

const LIMIT32: u64 = 0xFFFF_FFFF;
/// 1980-01-01, the zip epoch (deterministic output: no clock).
const DOS_DATE: u16 = 0x21;

struct Member {
    name: Vec<u8>,
    offset: u64,
    size: u64,
    crc: u32,
}

/// A [`Sink`] writing an `.npz` atomically.
pub struct NpzWriter {
    /// The output until `begin` starts writing it.
    target: Option<Box<dyn WriteTarget>>,
    file: Option<Box<dyn WriteTarget>>,
    pos: u64,
    plan: Vec<TensorInfo>,
    members: Vec<Member>,
}

impl NpzWriter {
    /// A writer for the local file `target`.
    pub fn new(target: &Path) -> NpzWriter {
        Self::to_target(Box::new(FileTarget::new(target)))
    }

    /// A writer into `target`.
    pub fn to_target(target: Box<dyn WriteTarget>) -> NpzWriter {
        NpzWriter {
            target: Some(target),
            file: None,
            pos: 0,
            plan: Vec::new(),
            members: Vec::new(),
        }
    }

    fn put(&mut self, bytes: &[u8]) -> Result<()> {
        let file = self
            .file
            .as_mut()
            .ok_or_else(|| Error::usage(code::CALL_ORDER, "npz writer not begun"))?;
        file.write_all(bytes)?;
        self.pos += bytes.len() as u64;
        Ok(())
    }
}

/// Longest member name: a zip name length is a u16, and `.npy` is appended.
const MAX_NAME: usize = u16::MAX as usize - 4;

/// Why `name` cannot be an `.npz` member name that every extractor keeps
/// inside its target folder, if it cannot.
fn unsafe_name(name: &str) -> Option<&'static str> {
    if name.is_empty() {
        return Some("it is empty");
    }
    if name.len() > MAX_NAME {
        return Some("it is longer than a zip member name can be");
    }
    if name.contains('\0') {
        return Some("it holds a NUL byte");
    }
    if name.contains(['/', '\\']) {
        return Some("it holds a path separator (an extractor would write outside its folder)");
    }
    if name == "." || name == ".." {
        return Some("it is a relative path component");
    }
    let b = name.as_bytes();
    if b.len() >= 2 && b[1] == b':' && b[0].is_ascii_alphabetic() {
        return Some("it starts with a drive letter");
    }
    None
}

/// Refuses, before anything is written, tensors NumPy cannot represent and
/// names an extractor could not keep inside its folder.
pub fn check_plan(plan: &Plan) -> Result<()> {
    let mut seen = std::collections::HashSet::new();
    for t in &plan.tensors {
        if let Some(why) = unsafe_name(&t.name) {
            return Err(FormatError::new(
                crate::FORMAT,
                rules::WRITE_NAME,
                format!("not a safe .npz member name: {why}"),
            )
            .tensor(&t.name)
            .into());
        }
        if !seen.insert(t.name.as_str()) {
            return Err(
                FormatError::new(crate::FORMAT, rules::WRITE_NAME, "the name appears twice")
                    .tensor(&t.name)
                    .into(),
            );
        }
        if header::dtype_descr(t.dtype).is_none() {
            return Err(FormatError::new(
                crate::FORMAT,
                rules::WRITE_DTYPE,
                format!(
                    "{} has no NumPy dtype: cast it to f32 (or f16), or write safetensors or tpack",
                    t.dtype
                ),
            )
            .tensor(&t.name)
            .into());
        }
    }
    Ok(())
}

fn local_header(name: &[u8], size: u64, crc: u32) -> Vec<u8> {
    let zip64 = size >= LIMIT32;
    let mut h = Vec::with_capacity(30 + name.len() + 20);
    h.extend_from_slice(&0x0403_4b50u32.to_le_bytes());
    h.extend_from_slice(&(if zip64 { 45u16 } else { 20 }).to_le_bytes());
    h.extend_from_slice(&0u16.to_le_bytes()); // flags
    h.extend_from_slice(&0u16.to_le_bytes()); // stored
    h.extend_from_slice(&0u16.to_le_bytes()); // time
    h.extend_from_slice(&DOS_DATE.to_le_bytes());
    h.extend_from_slice(&crc.to_le_bytes());
    let small = if zip64 { LIMIT32 as u32 } else { size as u32 };
    h.extend_from_slice(&small.to_le_bytes());
    h.extend_from_slice(&small.to_le_bytes());
    h.extend_from_slice(&(name.len() as u16).to_le_bytes());
    h.extend_from_slice(&(if zip64 { 20u16 } else { 0 }).to_le_bytes());
    h.extend_from_slice(name);
    if zip64 {
        h.extend_from_slice(&1u16.to_le_bytes());
        h.extend_from_slice(&16u16.to_le_bytes());
        h.extend_from_slice(&size.to_le_bytes());
        h.extend_from_slice(&size.to_le_bytes());
    }
    h
}

fn central_header(m: &Member) -> Vec<u8> {
    let big_size = m.size >= LIMIT32;
    let big_offset = m.offset >= LIMIT32;
    let mut extra = Vec::new();
    if big_size {
        extra.extend_from_slice(&m.size.to_le_bytes());
        extra.extend_from_slice(&m.size.to_le_bytes());
    }
    if big_offset {
        extra.extend_from_slice(&m.offset.to_le_bytes());
    }
    let mut h = Vec::with_capacity(46 + m.name.len() + 4 + extra.len());
    h.extend_from_slice(&0x0201_4b50u32.to_le_bytes());
    let version = if extra.is_empty() { 20u16 } else { 45 };
    h.extend_from_slice(&version.to_le_bytes()); // made by
    h.extend_from_slice(&version.to_le_bytes()); // needed
    h.extend_from_slice(&0u16.to_le_bytes());
    h.extend_from_slice(&0u16.to_le_bytes());
    h.extend_from_slice(&0u16.to_le_bytes());
    h.extend_from_slice(&DOS_DATE.to_le_bytes());
    h.extend_from_slice(&m.crc.to_le_bytes());
    let size = if big_size { LIMIT32 as u32 } else { m.size as u32 };
    h.extend_from_slice(&size.to_le_bytes());
    h.extend_from_slice(&size.to_le_bytes());
    h.extend_from_slice(&(m.name.len() as u16).to_le_bytes());
    let extra_len = if extra.is_empty() { 0 } else { 4 + extra.len() };
    h.extend_from_slice(&(extra_len as u16).to_le_bytes());
    h.extend_from_slice(&[0u8; 6]); // comment len, disk, internal attrs
    h.extend_from_slice(&0u32.to_le_bytes()); // external attrs
    let offset = if big_offset {
        LIMIT32 as u32
    } else {
        m.offset as u32
    };
    h.extend_from_slice(&offset.to_le_bytes());
    h.extend_from_slice(&m.name);
    if !extra.is_empty() {
        h.extend_from_slice(&1u16.to_le_bytes());
        h.extend_from_slice(&(extra.len() as u16).to_le_bytes());
        h.extend_from_slice(&extra);
    }
    h
}

impl Sink for NpzWriter {
    fn begin(&mut self, plan: &Plan) -> Result<()> {
        tensorcast_core::sparse::refuse_sparse(&plan.tensors, "NumPy")?;
        let name = self
            .target
            .as_ref()
            .map(|t| t.name().to_path_buf())
            .unwrap_or_default();
        check_plan(plan).map_err(|e| e.in_file(&name))?;
        self.plan = plan.tensors.clone();
        self.file = Some(
            self.target
                .take()
                .ok_or_else(|| Error::usage(code::CALL_ORDER, "npz writer begun twice"))?,
        );
        Ok(())
    }

    fn write_tensor(&mut self, index: usize, data: TensorData<'_>) -> Result<()> {
        let info = self
            .plan
            .get(index)
            .filter(|_| index == self.members.len())
            .cloned()
            .ok_or_else(|| {
                Error::usage(
                    code::CALL_ORDER,
                    format!("npz writer got tensor #{index} out of order"),
                )
            })?;
        let descr = header::dtype_descr(info.dtype).ok_or_else(|| {
            Error::usage(
                code::CALL_ORDER,
                format!("tensor '{}' was not in the plan", info.name),
            )
        })?;
        let npy = header::format(descr, &info.shape);
        let name = format!("{}.npy", info.name).into_bytes();
        let size = npy.len() as u64 + info.nbytes;
        let offset = self.pos;
        let local = local_header(&name, size, 0);
        self.put(&local)?;
        let mut crc = crc32fast::Hasher::new();
        crc.update(&npy);
        self.put(&npy)?;
        let mut written = 0u64;
        data.for_each_chunk(|c| {
            crc.update(c);
            written += c.len() as u64;
            self.put(c)
        })?;
        check_size(&info, written)?;
        let crc = crc.finalize();
        // The CRC is known only now: patch it into the local header.
        let file = self
            .file
            .as_mut()
            .ok_or_else(|| Error::usage(code::CALL_ORDER, "npz writer not begun"))?;
        file.write_at(offset + 14, &crc.to_le_bytes())?;
        self.members.push(Member {
            name,
            offset,
            size,
            crc,
        });
        Ok(())
    }

    fn finish(&mut self) -> Result<()> {
        let cd_start = self.pos;
        let central: Vec<u8> = self.members.iter().flat_map(central_header).collect();
        self.put(&central)?;
        let cd_size = self.pos - cd_start;
        let n = self.members.len() as u64;
        let zip64 = n >= 0xFFFF || cd_start >= LIMIT32 || cd_size >= LIMIT32;
        let mut tail = Vec::new();
        if zip64 {
            let record = self.pos;
            tail.extend_from_slice(&0x0606_4b50u32.to_le_bytes());
            tail.extend_from_slice(&44u64.to_le_bytes());
            tail.extend_from_slice(&45u16.to_le_bytes());
            tail.extend_from_slice(&45u16.to_le_bytes());
            tail.extend_from_slice(&[0u8; 8]);
            tail.extend_from_slice(&n.to_le_bytes());
            tail.extend_from_slice(&n.to_le_bytes());
            tail.extend_from_slice(&cd_size.to_le_bytes());
            tail.extend_from_slice(&cd_start.to_le_bytes());
            tail.extend_from_slice(&0x0706_4b50u32.to_le_bytes());
            tail.extend_from_slice(&0u32.to_le_bytes());
            tail.extend_from_slice(&record.to_le_bytes());
            tail.extend_from_slice(&1u32.to_le_bytes());
        }
        tail.extend_from_slice(&0x0605_4b50u32.to_le_bytes());
        tail.extend_from_slice(&[0u8; 4]);
        let count = n.min(0xFFFF) as u16;
        tail.extend_from_slice(&count.to_le_bytes());
        tail.extend_from_slice(&count.to_le_bytes());
        tail.extend_from_slice(&(cd_size.min(LIMIT32) as u32).to_le_bytes());
        tail.extend_from_slice(&(cd_start.min(LIMIT32) as u32).to_le_bytes());
        tail.extend_from_slice(&0u16.to_le_bytes());
        self.put(&tail)?;
        let file = self
            .file
            .take()
            .ok_or_else(|| Error::usage(code::CALL_ORDER, "npz writer not begun"))?;
        file.commit()
    }
}
