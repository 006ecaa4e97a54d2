//! The disk: the only module of imgx that reads or writes files.
//!
//! Reading: [`DiskIo`] implements [`Io`] for the primitives, resolving paths by [`Origin`],
//! decoding each image once, converting it to gray exactly as Julia's Colors.jl does, and
//! recording every file it decodes with its SHA-256 for the run manifest. Whatever a file
//! holds, reading it gives `Err` with a reason, never a panic.
//!
//! Writing: [`save_gray`], [`save_rgb`] and [`write_atomic`] never leave a half-written file:
//! they write a temporary file in the destination folder and rename it into place.
//! [`output_path`] keeps a script's outputs inside the output folder.

use crate::ops::{Io, Origin, Text};
use crate::par::lock;
use crate::tensor::Shape;
use image::codecs::jpeg::JpegEncoder;
use image::{DynamicImage, ImageBuffer, ImageError, ImageFormat, ImageReader, Limits};
use ndarray::{Array2, ArrayView1, ArrayView2, ShapeBuilder};
use sha2::{Digest, Sha256 as Sha256Hasher};
use std::collections::{BTreeMap, HashMap};
use std::fmt::Display;
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufRead, BufReader, Cursor, Read, Seek, Write};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Condvar, Mutex, PoisonError};

/// The largest image side imgx reads.
const MAX_SIDE: usize = 32768;
/// The most pixels an image imgx reads may have (2^28).
const MAX_PIXELS: usize = 1 << 28;
/// What a decoder may allocate: room for a 16-bit RGBA image at [`MAX_PIXELS`], plus as much
/// again for the decoder's own buffers.
const MAX_DECODE_BYTES: u64 = MAX_PIXELS as u64 * 8 * 2;

const NPY_MAGIC: &[u8] = b"\x93NUMPY";
const READABLE: &str = "PNG, TIFF, JPEG, BMP, GIF, or a 2-D float32/float64 .npy array";

/// Reads images for a run: paths resolved by origin, each file decoded once.
pub struct DiskIo {
    script_dir: PathBuf,
    current_dir: PathBuf,
    /// Where outputs go ([`output_path`]), and whether they may go anywhere else.
    out_dir: PathBuf,
    allow_write_anywhere: bool,
    /// Threads an encoder may use (`--threads`); outputs are the same bytes for any number.
    threads: usize,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    /// Shapes reported by `image_shape`, so a file that changes before it is read is caught.
    shapes: HashMap<PathBuf, Shape>,
    /// Decoded images by resolved path, with the SHA-256 of the bytes they were decoded from.
    loaded: BTreeMap<PathBuf, (String, Array2<f64>)>,
}

impl DiskIo {
    /// `script_dir`: the folder of the script (for paths written in it, and the output folder
    /// unless [`DiskIo::with_outputs`] says otherwise); `current_dir`: the folder imgx runs in
    /// (for paths given on the command line).
    pub fn new(script_dir: PathBuf, current_dir: PathBuf) -> Self {
        DiskIo {
            out_dir: script_dir.clone(),
            script_dir,
            current_dir,
            allow_write_anywhere: false,
            threads: 1,
            state: Mutex::default(),
        }
    }

    /// Outputs go to `out_dir`; with `allow_write_anywhere`, also outside it.
    pub fn with_outputs(self, out_dir: PathBuf, allow_write_anywhere: bool) -> Self {
        DiskIo {
            out_dir,
            allow_write_anywhere,
            ..self
        }
    }

    /// Encoders may use `threads` threads (at least one).
    pub fn with_threads(self, threads: usize) -> Self {
        DiskIo {
            threads: threads.max(1),
            ..self
        }
    }

    /// Threads an encoder may use.
    pub fn threads(&self) -> usize {
        self.threads
    }

    /// The folder outputs go to.
    pub fn out_dir(&self) -> &Path {
        &self.out_dir
    }

    /// Every input file decoded so far, as resolved, with the SHA-256 (hex) of its bytes,
    /// sorted by path.
    pub fn inputs(&self) -> Vec<(PathBuf, String)> {
        let state = lock(&self.state);
        state
            .loaded
            .iter()
            .map(|(p, (sha, _))| (p.clone(), sha.clone()))
            .collect()
    }
}

impl Io for DiskIo {
    fn resolve(&self, path: &Text) -> PathBuf {
        let base = match path.origin {
            Origin::Script => &self.script_dir,
            Origin::CommandLine => &self.current_dir,
        };
        // `join` keeps absolute paths as they are; collecting components drops inner `.`s.
        base.join(&path.value).components().collect()
    }

    fn image_shape(&self, path: &Text) -> Result<Shape, String> {
        let resolved = self.resolve(path);
        let file =
            File::open(&resolved).map_err(|e| cannot_load(path, &resolved, io_reason(&e)))?;
        let shape =
            guarded(|| probe(BufReader::new(file))).map_err(|e| cannot_load(path, &resolved, e))?;
        let mut state = lock(&self.state);
        state.shapes.insert(resolved, shape);
        Ok(shape)
    }

    fn read_gray(&self, path: &Text) -> Result<Array2<f64>, String> {
        let resolved = self.resolve(path);
        let mut state = lock(&self.state);
        if let Some((_, gray)) = state.loaded.get(&resolved) {
            return Ok(gray.clone());
        }
        let bytes = fs::read(&resolved).map_err(|e| cannot_load(path, &resolved, io_reason(&e)))?;
        let gray = guarded(|| decode(&bytes)).map_err(|e| cannot_load(path, &resolved, e))?;
        let shape = Shape::new(gray.nrows(), gray.ncols());
        if let Some(&checked) = state.shapes.get(&resolved).filter(|&&s| s != shape) {
            let reason = format!(
                "the file changed while imgx ran: it was {checked} when checked, now {shape}"
            );
            return Err(cannot_load(path, &resolved, reason));
        }
        state
            .loaded
            .insert(resolved, (sha256_hex(&bytes), gray.clone()));
        Ok(gray)
    }

    fn output_path(&self, path: &str) -> Result<PathBuf, String> {
        output_path(&self.out_dir, path, self.allow_write_anywhere)
    }
}

/// The memory the system can still give a process (Linux's MemAvailable), if it says.
pub fn available_memory() -> Option<u64> {
    let info = fs::read_to_string("/proc/meminfo").ok()?;
    let line = info.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    kib.checked_mul(1024)
}

fn cannot_load(path: &Text, resolved: &Path, reason: impl Display) -> String {
    if Path::new(&path.value) == resolved {
        format!("cannot load `{}`: {reason}", path.value)
    } else {
        format!(
            "cannot load `{}` (resolved to `{}`): {reason}",
            path.value,
            resolved.display()
        )
    }
}

fn io_reason(e: &io::Error) -> String {
    match e.kind() {
        io::ErrorKind::NotFound => "no such file".into(),
        io::ErrorKind::PermissionDenied => "permission denied".into(),
        io::ErrorKind::UnexpectedEof => "the file is truncated".into(),
        _ => e.to_string(),
    }
}

/// Runs a decoder, turning a panic inside it (a decoder bug on hostile input) into an `Err`.
fn guarded<T>(f: impl FnOnce() -> Result<T, String>) -> Result<T, String> {
    catch_unwind(AssertUnwindSafe(f))
        .unwrap_or_else(|_| Err("the decoder failed on this file (corrupt data?)".into()))
}

/// The shape of an image or array from its header, refusing sizes imgx does not read.
fn probe<R: BufRead + Seek>(mut r: R) -> Result<Shape, String> {
    if r.fill_buf()
        .map_err(|e| io_reason(&e))?
        .starts_with(NPY_MAGIC)
    {
        return npy_header(&mut r).map(|h| h.shape);
    }
    let reader = image_reader(r)?;
    let (width, height) = if reader.format() == Some(ImageFormat::Tiff) {
        // The `tiff` crate reads the dimensions of TIFFs the image crate refuses (see `tiff_gray`).
        let mut tiff = tiff::decoder::Decoder::new(reader.into_inner()).map_err(tiff_reason)?;
        tiff.dimensions().map_err(tiff_reason)?
    } else {
        reader.into_dimensions().map_err(image_reason)?
    };
    checked_shape(height as usize, width as usize)
}

fn checked_shape(rows: usize, cols: usize) -> Result<Shape, String> {
    let shape = Shape::new(rows, cols);
    if shape.is_empty() {
        Err(format!("the image is {shape}: it has no pixels"))
    } else if rows > MAX_SIDE || cols > MAX_SIDE {
        Err(format!(
            "the image is {shape}, larger than the limit of {MAX_SIDE} pixels per side"
        ))
    } else if rows * cols > MAX_PIXELS {
        Err(format!(
            "the image is {shape} = {} pixels, more than the limit of 2^28 = {MAX_PIXELS} pixels",
            rows * cols
        ))
    } else {
        Ok(shape)
    }
}

/// An image reader for the formats imgx reads, recognised by content.
fn image_reader<R: BufRead + Seek>(r: R) -> Result<ImageReader<R>, String> {
    let reader = ImageReader::new(r)
        .with_guessed_format()
        .map_err(|e| io_reason(&e))?;
    match reader.format() {
        Some(
            ImageFormat::Png
            | ImageFormat::Tiff
            | ImageFormat::Jpeg
            | ImageFormat::Bmp
            | ImageFormat::Gif,
        ) => Ok(reader),
        Some(other) => Err(format!(
            "{other:?} images are not supported; imgx reads {READABLE}"
        )),
        None => Err(format!(
            "not an image imgx recognises; imgx reads {READABLE}"
        )),
    }
}

/// Decodes a whole file to gray levels, after checking its header.
fn decode(bytes: &[u8]) -> Result<Array2<f64>, String> {
    let shape = probe(Cursor::new(bytes))?;
    if bytes.starts_with(NPY_MAGIC) {
        return read_npy(bytes);
    }
    let mut reader = image_reader(Cursor::new(bytes))?;
    let format = reader.format();
    if format == Some(ImageFormat::Jpeg) {
        jpeg_complete(bytes)?;
    }
    let mut limits = Limits::default();
    limits.max_alloc = Some(MAX_DECODE_BYTES);
    reader.limits(limits);
    let gray = match reader.decode() {
        Ok(image) => gray_levels(&image)?,
        Err(ImageError::Unsupported(_)) if format == Some(ImageFormat::Tiff) => {
            tiff_gray(bytes, shape)?
        }
        Err(e) => return Err(image_reason(e)),
    };
    Array2::from_shape_vec((shape.rows, shape.cols), gray)
        .map_err(|_| format!("the decoded pixels do not fill the {shape} the header announces"))
}

/// The JPEG decoder fills a truncated scan with gray and reports success, so truncation is
/// caught here: the end-of-image marker must follow the last start-of-scan. (Markers cannot occur
/// inside entropy-coded data, and an embedded thumbnail ends before the main image's scans.)
fn jpeg_complete(bytes: &[u8]) -> Result<(), String> {
    let marker = |m: u8| bytes.windows(2).rposition(|w| w == [0xFF, m]);
    match (marker(0xDA), marker(0xD9)) {
        (Some(scan), Some(end)) if end > scan => Ok(()),
        _ => Err(
            "the JPEG file is truncated: its image data does not reach the end-of-image marker"
                .into(),
        ),
    }
}

fn image_reason(e: ImageError) -> String {
    match e {
        ImageError::Decoding(e) => format!("the file is corrupt or truncated ({e})"),
        ImageError::Unsupported(e) => format!("unsupported image ({e}); imgx reads {READABLE}"),
        ImageError::Limits(e) => format!("the image is too large to decode ({e})"),
        ImageError::IoError(e) => io_reason(&e),
        e => e.to_string(),
    }
}

fn tiff_reason(e: tiff::TiffError) -> String {
    match e {
        tiff::TiffError::FormatError(e) => format!("the TIFF file is corrupt or truncated ({e})"),
        tiff::TiffError::UnsupportedError(e) => format!("unsupported TIFF ({e})"),
        tiff::TiffError::IoError(e) => io_reason(&e),
        e => e.to_string(),
    }
}

/// Gray levels of a decoded image, row-major, by Colors.jl's rules: gray samples are `k/max`;
/// colour is Rec. 601 luma ([`rec601`]); alpha is dropped.
fn gray_levels(image: &DynamicImage) -> Result<Vec<f64>, String> {
    let channels = usize::from(image.color().channel_count());
    let colour = image.color().has_color();
    fn levels<S: Copy + Into<u32>>(
        samples: &[S],
        channels: usize,
        colour: bool,
        max: u32,
    ) -> Vec<f64> {
        let max = f64::from(max);
        per_pixel(samples, channels, |p| {
            if colour {
                rec601(p, max)
            } else {
                f64::from(p[0].into()) / max
            }
        })
    }
    if let Some(s) = image.as_flat_samples_u8() {
        Ok(levels(s.samples, channels, colour, 255))
    } else if let Some(s) = image.as_flat_samples_u16() {
        Ok(levels(s.samples, channels, colour, 65535))
    } else if let (Some(s), true) = (image.as_flat_samples_f32(), colour) {
        // Colors.jl on float RGB: `0.299f0 r + 0.587f0 g + 0.114f0 b`, no rounding.
        Ok(per_pixel(s.samples, channels, |p| {
            f64::from(0.299f32 * p[0] + 0.587f32 * p[1] + 0.114f32 * p[2])
        }))
    } else {
        Err(format!(
            "unsupported pixel type {:?}; imgx reads {READABLE}",
            image.color()
        ))
    }
}

fn per_pixel<S: Copy>(samples: &[S], channels: usize, f: impl Fn(&[S]) -> f64) -> Vec<f64> {
    samples.chunks_exact(channels).map(f).collect()
}

/// Colors.jl's Rec. 601 luma of integer RGB samples (`cnvt(Gray, ::AbstractRGB{<:Normed})`):
/// `round(Float32(0.001) * (299r + 587g + 114b))`, all in `Float32` (FixedPointNumbers'
/// `floattype` of both N0f8 and N0f16), ties to even, then `/ max` as `N0f8`/`N0f16` → `Float64`.
fn rec601<S: Copy + Into<u32>>(rgb: &[S], max: f64) -> f64 {
    let sum = 299 * rgb[0].into() + 587 * rgb[1].into() + 114 * rgb[2].into();
    f64::from((0.001f32 * sum as f32).round_ties_even()) / max
}

/// Reads a gray TIFF the image crate refuses with the `tiff` crate directly: gray with extra
/// samples (which the `tiff` crate reports as "multiband", whatever the ExtraSamples tag says,
/// malformed values included) and float gray (values taken as they are, like `.npy`). Only the
/// first sample of each pixel, the gray level, is kept: extra samples are treated as
/// unassociated alpha and dropped.
fn tiff_gray(bytes: &[u8], shape: Shape) -> Result<Vec<f64>, String> {
    use tiff::decoder::{Decoder, DecodingResult, Limits};
    use tiff::ColorType;
    let mut limits = Limits::default();
    limits.decoding_buffer_size = MAX_DECODE_BYTES as usize;
    let mut decoder = Decoder::new(Cursor::new(bytes))
        .map_err(tiff_reason)?
        .with_limits(limits);
    let colour = decoder.colortype().map_err(tiff_reason)?;
    if !matches!(
        colour,
        ColorType::Gray(_) | ColorType::GrayA(_) | ColorType::Multiband { .. }
    ) {
        return Err(format!(
            "unsupported TIFF colour type {colour:?}; imgx reads {READABLE}"
        ));
    }
    // Chunky data interleaves the extra samples; planar data comes back as the gray plane alone.
    let pixels = shape.len();
    let gray = |len: usize, f: &dyn Fn(usize) -> f64| match (len / pixels, len % pixels) {
        (stride @ 1.., 0) => Ok((0..pixels).map(|i| f(i * stride)).collect()),
        _ => Err(format!(
            "unsupported TIFF layout {colour:?}; imgx reads {READABLE}"
        )),
    };
    match decoder.read_image().map_err(tiff_reason)? {
        DecodingResult::U8(v) => gray(v.len(), &|i| f64::from(v[i]) / 255.0),
        DecodingResult::U16(v) => gray(v.len(), &|i| f64::from(v[i]) / 65535.0),
        DecodingResult::F32(v) => gray(v.len(), &|i| f64::from(v[i])),
        DecodingResult::F64(v) => gray(v.len(), &|i| v[i]),
        _ => Err(format!(
            "unsupported TIFF sample type in {colour:?}; imgx reads {READABLE}"
        )),
    }
}

/// The header of a `.npy` file.
struct Npy {
    shape: Shape,
    /// Bytes per value: 4 (`<f4`) or 8 (`<f8`).
    width: usize,
    fortran_order: bool,
}

/// Reads a `.npy` header (format versions 1–3), leaving `r` at the start of the data.
fn npy_header(r: &mut impl Read) -> Result<Npy, String> {
    let truncated = |e: io::Error| format!("the .npy header is truncated ({e})");
    let mut preamble = [0u8; 8];
    r.read_exact(&mut preamble).map_err(truncated)?;
    let len = match preamble[6] {
        1 => {
            let mut len = [0u8; 2];
            r.read_exact(&mut len).map_err(truncated)?;
            usize::from(u16::from_le_bytes(len))
        }
        2 | 3 => {
            let mut len = [0u8; 4];
            r.read_exact(&mut len).map_err(truncated)?;
            u32::from_le_bytes(len) as usize
        }
        v => return Err(format!("unknown .npy format version {v}")),
    };
    if len > 1 << 20 {
        return Err(format!(
            "the .npy header claims {len} bytes; a valid header is far shorter"
        ));
    }
    let mut header = vec![0u8; len];
    r.read_exact(&mut header).map_err(truncated)?;
    let header = String::from_utf8_lossy(&header);
    let bad = || format!("the .npy header is malformed: {}", header.trim());
    let field = |key: &str| {
        let at = header.find(&format!("'{key}'")).ok_or_else(bad)? + key.len() + 2;
        header[at..]
            .trim_start()
            .strip_prefix(':')
            .map(str::trim_start)
            .ok_or_else(bad)
    };
    let descr = field("descr")?;
    let width = match descr.get(..5) {
        Some("'<f4'") => 4,
        Some("'<f8'") => 8,
        _ => {
            let descr = descr.split(',').next().unwrap_or(descr);
            return Err(format!(
                "the array's dtype is {descr}; imgx reads little-endian float32 ('<f4') or float64 ('<f8') arrays"
            ));
        }
    };
    let fortran_order = match field("fortran_order")? {
        f if f.starts_with("True") => true,
        f if f.starts_with("False") => false,
        _ => return Err(bad()),
    };
    let dims = field("shape")?
        .strip_prefix('(')
        .and_then(|s| s.split_once(')'))
        .ok_or_else(bad)?
        .0;
    let dims = dims
        .split(',')
        .map(str::trim)
        .filter(|d| !d.is_empty())
        .map(|d| d.parse::<usize>().map_err(|_| bad()))
        .collect::<Result<Vec<_>, _>>()?;
    let &[rows, cols] = dims.as_slice() else {
        return Err(format!(
            "the array has {} dimensions; imgx reads 2-D arrays",
            dims.len()
        ));
    };
    Ok(Npy {
        shape: checked_shape(rows, cols)?,
        width,
        fortran_order,
    })
}

fn read_npy(bytes: &[u8]) -> Result<Array2<f64>, String> {
    let mut data = bytes;
    let npy = npy_header(&mut data)?;
    let expected = npy.shape.len() * npy.width;
    if data.len() != expected {
        let what = if data.len() < expected {
            "truncated"
        } else {
            "corrupt"
        };
        return Err(format!(
            "the .npy file is {what}: its data holds {} bytes where a {} array of {}-byte floats needs {expected}",
            data.len(),
            npy.shape,
            npy.width
        ));
    }
    let values: Vec<f64> = match npy.width {
        4 => data
            .chunks_exact(4)
            .map(|b| f64::from(f32::from_le_bytes([b[0], b[1], b[2], b[3]])))
            .collect(),
        _ => data
            .chunks_exact(8)
            .map(|b| f64::from_le_bytes(b.try_into().expect("8-byte chunk")))
            .collect(),
    };
    let dims = (npy.shape.rows, npy.shape.cols).set_f(npy.fortran_order);
    let array = Array2::from_shape_vec(dims, values).expect("length checked against the shape");
    Ok(array.as_standard_layout().into_owned())
}

fn npy_bytes(m: ArrayView2<f64>) -> Vec<u8> {
    let mut header = format!(
        "{{'descr': '<f8', 'fortran_order': False, 'shape': ({}, {}), }}",
        m.nrows(),
        m.ncols()
    );
    // Pad with spaces so that the data starts 64-byte aligned, as numpy does.
    while (10 + header.len() + 1) % 64 != 0 {
        header.push(' ');
    }
    header.push('\n');
    let mut out = NPY_MAGIC.to_vec();
    out.extend([1, 0]);
    out.extend((header.len() as u16).to_le_bytes());
    out.extend(header.as_bytes());
    out.reserve_exact(8 * m.len());
    for v in m.iter() {
        out.extend_from_slice(&v.to_le_bytes());
    }
    out
}

/// What a file extension saves as.
enum Target {
    Image(ImageFormat),
    Npy,
}

const SAVABLE: &str = ".png, .tif, .tiff, .jpg, .jpeg, .bmp, .npy";

fn target(path: &Path) -> Result<Target, String> {
    let ext = path.extension().map(|e| e.to_string_lossy().to_lowercase());
    Ok(match ext.as_deref() {
        Some("png") => Target::Image(ImageFormat::Png),
        Some("tif" | "tiff") => Target::Image(ImageFormat::Tiff),
        Some("jpg" | "jpeg") => Target::Image(ImageFormat::Jpeg),
        Some("bmp") => Target::Image(ImageFormat::Bmp),
        Some("npy") => Target::Npy,
        _ => {
            return Err(format!(
                "cannot save `{}`: unknown file extension; imgx saves {SAVABLE}",
                path.display()
            ))
        }
    })
}

/// Saves a matrix as a gray image or a `.npy` array, chosen by the extension of `path`.
///
/// Images: values must be in [0, 1] (the caller applies the range policy) and are stored as
/// `round(v · (2^bits − 1))`, ties to even; `bits` is 8 or 16 for PNG and TIFF, 8 for JPEG
/// (quality 100) and BMP. `.npy`: the exact values as little-endian float64, any range; `bits`
/// is ignored.
pub fn save_gray(path: &Path, m: ArrayView2<f64>, bits: u8) -> Result<Sha256, String> {
    let format = match target(path)? {
        Target::Npy => return write_atomic(path, &npy_bytes(m)),
        Target::Image(format) => format,
    };
    let image = match bits {
        8 => DynamicImage::ImageLuma8(image_buffer(path, &[m], 255.0, |v| whole(v, 255.0) as u8)?),
        16 if matches!(format, ImageFormat::Png | ImageFormat::Tiff) => {
            DynamicImage::ImageLuma16(image_buffer(path, &[m], 65535.0, |v| whole(v, 65535.0))?)
        }
        16 => {
            return Err(format!(
                "cannot save `{}` with 16 bits: {format:?} stores 8 bits per sample; use .png or .tif for 16 bits",
                path.display()
            ))
        }
        _ => return Err(format!("cannot save `{}` with {bits} bits: imgx saves 8 or 16 bits", path.display())),
    };
    save_image(path, &image, format)
}

/// Saves three matrices of one shape, values in [0, 1], as an 8-bit colour image (PNG, TIFF,
/// JPEG or BMP, by extension); used for false-colour difference images.
pub fn save_rgb(
    path: &Path,
    r: ArrayView2<f64>,
    g: ArrayView2<f64>,
    b: ArrayView2<f64>,
) -> Result<Sha256, String> {
    let Target::Image(format) = target(path)? else {
        return Err(format!(
            "cannot save `{}`: a colour image needs an image format (.png, .tif, .tiff, .jpg, .jpeg, .bmp)",
            path.display()
        ));
    };
    let image = DynamicImage::ImageRgb8(image_buffer(
        path,
        &[r.view(), g.view(), b.view()],
        255.0,
        |v| whole(v, 255.0) as u8,
    )?);
    save_image(path, &image, format)
}

/// Interleaves `channels` into an image buffer, quantising each value to `round(v · max)`.
/// `cast` clamps, so out-of-range values (a caller bug, caught in debug builds) clamp.
fn image_buffer<P: image::Pixel>(
    path: &Path,
    channels: &[ArrayView2<f64>],
    max: f64,
    cast: impl Fn(f64) -> P::Subpixel,
) -> Result<ImageBuffer<P, Vec<P::Subpixel>>, String> {
    let (rows, cols) = channels[0].dim();
    assert!(
        channels.iter().all(|c| c.dim() == (rows, cols)),
        "colour channels of different shapes"
    );
    let too_big = || {
        format!(
            "cannot save `{}`: a {rows}×{cols} matrix is no image size",
            path.display()
        )
    };
    if rows == 0 || cols == 0 {
        return Err(too_big());
    }
    // row by row, the channels interleaved (a row of a standard layout is a slice)
    let mut samples = Vec::with_capacity(rows * cols * channels.len());
    let sample = |v: f64| cast(level(v, max));
    for i in 0..rows {
        match channels {
            [gray] => samples.extend(gray.row(i).iter().map(|&v| sample(v))),
            [r, g, b] => {
                let (r, g, b) = (r.row(i), g.row(i), b.row(i));
                for ((&r, &g), &b) in r.iter().zip(g).zip(b) {
                    samples.extend([sample(r), sample(g), sample(b)]);
                }
            }
            _ => unreachable!("gray or red, green and blue"),
        }
    }
    let (width, height) = (
        u32::try_from(cols).map_err(|_| too_big())?,
        u32::try_from(rows).map_err(|_| too_big())?,
    );
    Ok(ImageBuffer::from_raw(width, height, samples).expect("buffer length matches the shape"))
}

/// The level of a value in [0, 1] at `max` (255 or 65535): `round(v · max)`, ties to even.
fn level(v: f64, max: f64) -> f64 {
    debug_assert!(
        (0.0..=1.0).contains(&v),
        "value {v} outside [0, 1] saved as an image"
    );
    (v * max).round_ties_even()
}

/// A level (a whole number from 0 to `max` ≤ 65535; outside, the nearest end) as an integer:
/// the low bits of 2⁵² + level, which is exact. The same number as `level as u16` (or `u8`),
/// whose saturating conversion the compiler does not vectorise (one instruction and a NaN test
/// per value).
#[inline]
#[allow(clippy::manual_clamp)] // max and min take NaN to 0; clamp would keep it
fn whole(level: f64, max: f64) -> u16 {
    (level.max(0.0).min(max) + 4_503_599_627_370_496.0).to_bits() as u16
}

/// The 8-bit gray level of a value in [0, 1], rounded as [`save_gray`] rounds it.
#[inline]
pub fn gray8(v: f64) -> u8 {
    whole(level(v, 255.0), 255.0) as u8
}

/// Saves 8-bit gray levels as an image (PNG, TIFF, JPEG or BMP, by extension).
pub fn save_gray8(path: &Path, levels: ArrayView2<u8>) -> Result<Sha256, String> {
    let Target::Image(format) = target(path)? else {
        return Err(format!(
            "cannot save `{}`: gray levels need an image format",
            path.display()
        ));
    };
    let (rows, cols) = levels.dim();
    let pixels = levels.iter().copied().collect();
    let image = u32::try_from(cols)
        .ok()
        .zip(u32::try_from(rows).ok())
        .and_then(|(w, h)| ImageBuffer::from_raw(w, h, pixels))
        .ok_or_else(|| {
            format!(
                "cannot save `{}`: a {rows}×{cols} matrix is no image size",
                path.display()
            )
        })?;
    save_image(path, &DynamicImage::ImageLuma8(image), format)
}

/// GIF frame delays are whole hundredths of a second, and browsers stretch delays below 2/100 s
/// to 1/10 s: the fastest frame rate a GIF plays at everywhere.
pub const GIF_MAX_FPS: f64 = 50.0;

/// Writes 8-bit gray frames of one shape as a looping animated GIF with the exact 256-level gray
/// palette (index k is gray k), so no level is lost and the bytes depend on the frames alone.
///
/// Frame i is shown from `round(100·i/fps)` to `round(100·(i+1)/fps)` hundredths of a second
/// (at least 2), so uneven delays keep the average rate exact (30 fps: 3, 4, 3, 3, 4, 3, …).
/// Each frame after the first stores only the rectangle where it differs from the one before,
/// drawn over it, and in that rectangle the pixels it does not change as a transparent index:
/// a level none of its changed pixels has (if there is one). LZW compresses those runs of one
/// index well.
pub fn save_gif(
    path: &Path,
    frames: &[ArrayView2<u8>],
    fps: f64,
    threads: usize,
) -> Result<Sha256, String> {
    let (rows, cols) = frames.first().map_or((0, 0), |f| f.dim());
    let (Ok(width), Ok(height)) = (u16::try_from(cols), u16::try_from(rows)) else {
        return Err(format!(
            "cannot save `{}`: a GIF is at most 65535×65535 pixels, the frames are {rows}×{cols}",
            path.display()
        ));
    };
    if frames.is_empty() || rows == 0 || cols == 0 {
        return Err(format!(
            "cannot save `{}`: no frame to save",
            path.display()
        ));
    }
    assert!(
        frames.iter().all(|f| f.dim() == (rows, cols)),
        "GIF frames of different shapes"
    );
    let palette: Vec<u8> = (0..=255u8).flat_map(|k| [k, k, k]).collect();
    let at = |i: usize| (100.0 * i as f64 / fps).round();
    // Each frame holds only the box that changed since the one before, compressed on its own,
    // so frames are compressed on `threads` threads while this one writes them in order: the
    // same bytes as one thread, with a few frames' buffers held at most.
    let pending = |i: usize| {
        let frame = &frames[i];
        let (top, bottom, left, right) = match i {
            0 => (0, rows, 0, cols),
            _ => changed(frames[i - 1], *frame).unwrap_or((0, 1, 0, 1)),
        };
        let rect = ndarray::s![top..bottom, left..right];
        let (buffer, transparent) = match i {
            0 => (frame.iter().copied().collect(), None),
            _ => over(frames[i - 1].slice(rect), frame.slice(rect)),
        };
        let delay = (at(i + 1) - at(i)).clamp(2.0, f64::from(u16::MAX)) as u16;
        gif::Frame {
            delay,
            dispose: gif::DisposalMethod::Keep,
            transparent,
            top: top as u16,
            left: left as u16,
            width: (right - left) as u16,
            height: (bottom - top) as u16,
            buffer: crate::lzw::encode(&buffer).into(),
            ..gif::Frame::default()
        }
    };
    // Straight into the file, as the frames are compressed: the GIF is never in memory whole.
    let gif_error = |e: gif::EncodingError| match e {
        gif::EncodingError::Io(e) => e,
        e => io::Error::other(e),
    };
    write_atomic_with(path, |w| {
        let mut encoder = gif::Encoder::new(w, width, height, &palette).map_err(gif_error)?;
        encoder
            .set_repeat(gif::Repeat::Infinite)
            .map_err(gif_error)?;
        in_order(frames.len(), threads, pending, |frame| {
            encoder
                .write_lzw_pre_encoded_frame(&frame)
                .map_err(gif_error)
        })?;
        encoder.into_inner().map(|_| ()).map_err(gif_error)
    })
}

/// Hands `make(0)`, `make(1)`, … `make(n − 1)` to `take` in that order, on the calling thread,
/// while `threads` threads make them (each the next not yet started, at most `2 · threads`
/// ahead of `take`). Stops at `take`'s first error; a panic in `make` resumes on this thread.
fn in_order<R: Send>(
    n: usize,
    threads: usize,
    make: impl Fn(usize) -> R + Sync,
    mut take: impl FnMut(R) -> io::Result<()>,
) -> io::Result<()> {
    struct Queue<R> {
        /// Made and not yet taken, by index.
        made: BTreeMap<usize, std::thread::Result<R>>,
        /// The next index to start and the next to take.
        start: usize,
        taken: usize,
        /// `take` is done (or failed, or a `make` panicked): start nothing more.
        closed: bool,
    }
    /// Closes the queue however the taking ends, so no maker waits for it.
    struct Close<'a, R>(&'a Mutex<Queue<R>>, &'a Condvar);
    impl<R> Drop for Close<'_, R> {
        fn drop(&mut self) {
            lock(self.0).closed = true;
            self.1.notify_all();
        }
    }
    let threads = threads.max(1);
    let ahead = 2 * threads;
    let queue = Mutex::new(Queue {
        made: BTreeMap::new(),
        start: 0,
        taken: 0,
        closed: false,
    });
    let progress = Condvar::new();
    let wait = |q| progress.wait(q).unwrap_or_else(PoisonError::into_inner);
    std::thread::scope(|scope| {
        for _ in 0..threads.min(n) {
            scope.spawn(|| loop {
                let i = {
                    let mut q = lock(&queue);
                    while !q.closed && q.start < n && q.start >= q.taken + ahead {
                        q = wait(q);
                    }
                    if q.closed || q.start == n {
                        return;
                    }
                    q.start += 1;
                    q.start - 1
                };
                let made = catch_unwind(AssertUnwindSafe(|| make(i)));
                lock(&queue).made.insert(i, made);
                progress.notify_all();
            });
        }
        let _close = Close(&queue, &progress);
        for i in 0..n {
            let made = {
                let mut q = lock(&queue);
                loop {
                    if let Some(made) = q.made.remove(&i) {
                        q.taken = i + 1;
                        break made;
                    }
                    q = wait(q);
                }
            };
            progress.notify_all();
            take(made.unwrap_or_else(|panic| std::panic::resume_unwind(panic)))?;
        }
        Ok(())
    })
}

/// The pixels of `now` to draw over `before` (one rectangle of two frames), and the transparent
/// index they use: the lowest level no changed pixel has, written where `now` equals `before`.
/// If the changed pixels have every level, `now` itself and none.
fn over(before: ArrayView2<u8>, now: ArrayView2<u8>) -> (Vec<u8>, Option<u8>) {
    // row by row, as slices (a rectangle's rows are contiguous)
    fn slice(r: ArrayView1<'_, u8>) -> &[u8] {
        r.to_slice()
            .unwrap_or_else(|| unreachable!("a row of a rectangle"))
    }
    let rows = || (before.rows().into_iter().map(slice)).zip(now.rows().into_iter().map(slice));
    // four tables, so consecutive pixels do not wait on each other's stores
    let mut used = [[false; 256]; 4];
    for (b, n) in rows() {
        let (bc, nc) = (b.chunks_exact(4), n.chunks_exact(4));
        let tail = bc.remainder().iter().zip(nc.remainder());
        for (b, n) in bc.zip(nc) {
            for (used, (&b, &n)) in used.iter_mut().zip(b.iter().zip(n)) {
                used[usize::from(n)] |= b != n;
            }
        }
        for (&b, &n) in tail {
            used[0][usize::from(n)] |= b != n;
        }
    }
    let mut pixels = Vec::with_capacity(now.len());
    match (0..256).position(|level| used.iter().all(|u| !u[level])) {
        Some(t) => {
            let t = t as u8;
            for (b, n) in rows() {
                pixels.extend(b.iter().zip(n).map(|(&b, &n)| if b == n { t } else { n }));
            }
            (pixels, Some(t))
        }
        None => {
            rows().for_each(|(_, n)| pixels.extend_from_slice(n));
            (pixels, None)
        }
    }
}

/// The bounding box (top, bottom, left, right; ends exclusive) of the pixels where `b` differs
/// from `a`, or `None` where they are equal.
fn changed(a: ArrayView2<u8>, b: ArrayView2<u8>) -> Option<(usize, usize, usize, usize)> {
    let mut bbox: Option<(usize, usize, usize, usize)> = None;
    for (i, (ra, rb)) in a.rows().into_iter().zip(b.rows()).enumerate() {
        let differs = |(&x, &y): (&u8, &u8)| x != y;
        let Some(l) = ra.iter().zip(rb.iter()).position(differs) else {
            continue;
        };
        let r = ra.len()
            - ra.iter()
                .rev()
                .zip(rb.iter().rev())
                .position(differs)
                .unwrap_or(0);
        let (t, bo, l0, r0) = bbox.unwrap_or((i, i + 1, l, r));
        bbox = Some((t.min(i), bo.max(i + 1), l0.min(l), r0.max(r)));
    }
    bbox
}

fn save_image(path: &Path, image: &DynamicImage, format: ImageFormat) -> Result<Sha256, String> {
    let mut bytes = Cursor::new(Vec::new());
    match format {
        ImageFormat::Jpeg => {
            image.write_with_encoder(JpegEncoder::new_with_quality(&mut bytes, 100))
        }
        _ => image.write_to(&mut bytes, format),
    }
    .map_err(|e| format!("cannot encode `{}`: {e}", path.display()))?;
    write_atomic(path, bytes.get_ref())
}

/// The SHA-256 of a file imgx wrote, as 64 lowercase hex digits (for the run's manifest).
pub type Sha256 = String;

/// Writes `bytes` to `path` atomically: into a temporary file in the same folder, then renamed
/// over `path`, so readers see the old file or the new one, never a partial one. Creates the
/// parent folders as needed. Returns the SHA-256 of the bytes.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<Sha256, String> {
    write_atomic_with(path, |w| w.write_all(bytes))
}

/// As [`write_atomic`], with the bytes made by `write` as they are written (through a buffer),
/// so that a large file is never held in memory whole. If `write` fails, nothing is left. The
/// bytes are hashed as they go by, so the file is never read back.
pub fn write_atomic_with(
    path: &Path,
    write: impl FnOnce(&mut dyn Write) -> io::Result<()>,
) -> Result<Sha256, String> {
    /// Hashes what goes through it.
    struct Hashed<W> {
        inner: W,
        sha: Sha256Hasher,
    }
    impl<W: Write> Write for Hashed<W> {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            let n = self.inner.write(buf)?;
            self.sha.update(&buf[..n]);
            Ok(n)
        }
        fn flush(&mut self) -> io::Result<()> {
            self.inner.flush()
        }
    }
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let fail = |e: io::Error| format!("cannot write `{}`: {e}", path.display());
    let name = path
        .file_name()
        .ok_or_else(|| format!("cannot write `{}`: the path names no file", path.display()))?;
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    fs::create_dir_all(dir).map_err(fail)?;
    let unique = format!(
        "{}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    );
    let temp = dir.join(format!(".{}.{unique}.tmp", name.to_string_lossy()));
    let written = (|| {
        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&temp)?;
        let mut hashed = Hashed {
            inner: io::BufWriter::with_capacity(1 << 20, file),
            sha: Sha256Hasher::new(),
        };
        write(&mut hashed)?;
        (hashed.inner.into_inner())
            .map_err(|e| e.into_error())?
            .sync_all()?;
        fs::rename(&temp, path)?;
        Ok(format!("{:x}", hashed.sha.finalize()))
    })();
    if written.is_err() {
        // Best effort: the temporary file may not exist if creating it failed.
        let _ = fs::remove_file(&temp);
    }
    written.map_err(fail)
}

/// The SHA-256 of bytes, as 64 lowercase hex digits.
pub fn sha256_hex(bytes: &[u8]) -> String {
    format!("{:x}", Sha256Hasher::digest(bytes))
}

/// The whole contents of a file (a checkpoint to resume from).
pub fn read_bytes(path: &Path) -> Result<Vec<u8>, String> {
    fs::read(path).map_err(|e| format!("cannot read `{}`: {}", path.display(), io_reason(&e)))
}

/// A script's text.
pub fn read_script(path: &Path) -> Result<String, String> {
    let bytes = read_bytes(path)?;
    String::from_utf8(bytes).map_err(|e| {
        format!(
            "`{}` is not UTF-8 text (byte {} is not)",
            path.display(),
            e.utf8_error().valid_up_to()
        )
    })
}

/// Resolves an output path written in a script against the output folder `out_dir`.
///
/// Unless `allow_anywhere`, refuses absolute paths, paths that climb out with `..`, and paths
/// through a symbolic link that leads outside `out_dir`. Inner `..`s that stay inside are
/// resolved lexically (`a/../b` is `b`).
pub fn output_path(out_dir: &Path, written: &str, allow_anywhere: bool) -> Result<PathBuf, String> {
    if allow_anywhere {
        return Ok(out_dir.join(written));
    }
    let refuse = |why: &str| {
        Err(format!(
            "refusing to write `{written}`: {why}; outputs stay inside the output folder `{}` \
             unless imgx runs with --allow-write-anywhere",
            out_dir.display()
        ))
    };
    let mut inside = PathBuf::new();
    for component in Path::new(written).components() {
        match component {
            Component::Normal(name) => inside.push(name),
            Component::CurDir => {}
            Component::ParentDir if inside.pop() => {}
            Component::ParentDir => return refuse("`..` leads out of the output folder"),
            Component::RootDir | Component::Prefix(_) => return refuse("it is an absolute path"),
        }
    }
    if inside.as_os_str().is_empty() {
        return refuse("it names no file");
    }
    let path = out_dir.join(inside);
    // The deepest part of the path that exists (a dangling link counts) must really lie inside
    // the output folder; below it, the folders imgx creates are real folders.
    let existing = path
        .ancestors()
        .find(|a| a.starts_with(out_dir) && fs::symlink_metadata(a).is_ok());
    if let Some(existing) = existing {
        let canonical = |p: &Path| {
            fs::canonicalize(p).map_err(|e| format!("cannot check `{}`: {e}", p.display()))
        };
        if !canonical(existing)?.starts_with(canonical(out_dir)?) {
            return refuse(&format!(
                "`{}` leads outside the output folder through a symbolic link",
                existing.display()
            ));
        }
    }
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::{Rgb, RgbImage};

    const SHARED: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/images/");

    /// A fresh, empty folder under the system temp folder, unique to this test, removed with
    /// its files when the test ends.
    fn scratch(name: &str) -> tempfile::TempDir {
        tempfile::Builder::new()
            .prefix(&format!("imgx-io-{name}-"))
            .tempdir()
            .unwrap()
    }

    fn text(path: &Path) -> Text {
        Text {
            value: path.to_str().unwrap().into(),
            origin: Origin::Script,
        }
    }

    /// A `DiskIo` for absolute paths (its base folders do not exist).
    fn disk() -> DiskIo {
        DiskIo::new("/no/script/dir".into(), "/no/current/dir".into())
    }

    fn read(path: &Path) -> Result<Array2<f64>, String> {
        disk().read_gray(&text(path))
    }

    /// A rows×cols matrix of levels k/max with k spread over the whole range.
    fn levels(rows: usize, cols: usize, max: u32) -> Array2<f64> {
        Array2::from_shape_fn((rows, cols), |(i, j)| {
            f64::from((i as u32 * 7919 + j as u32 * 104_729) % (max + 1)) / f64::from(max)
        })
    }

    fn npy_file(descr: &str, fortran: bool, shape: &str, data: &[u8]) -> Vec<u8> {
        let order = if fortran { "True" } else { "False" };
        let header =
            format!("{{'descr': '{descr}', 'fortran_order': {order}, 'shape': {shape}, }}\n");
        let mut out = NPY_MAGIC.to_vec();
        out.extend([1, 0]);
        out.extend((header.len() as u16).to_le_bytes());
        out.extend(header.as_bytes());
        out.extend(data);
        out
    }

    #[test]
    fn resolve_by_origin() {
        let io = DiskIo::new("/scripts/demo".into(), "/home/me".into());
        let at = |value: &str, origin| {
            io.resolve(&Text {
                value: value.into(),
                origin,
            })
        };
        assert_eq!(
            at("a.png", Origin::Script),
            Path::new("/scripts/demo/a.png")
        );
        assert_eq!(
            at("./img/a.png", Origin::Script),
            Path::new("/scripts/demo/img/a.png")
        );
        assert_eq!(
            at("a.png", Origin::CommandLine),
            Path::new("/home/me/a.png")
        );
        assert_eq!(at("/data/a.png", Origin::Script), Path::new("/data/a.png"));
        assert_eq!(
            at("/data/a.png", Origin::CommandLine),
            Path::new("/data/a.png")
        );
    }

    #[test]
    fn whole_levels_are_their_integers() {
        for k in 0..=u16::MAX {
            assert_eq!(whole(f64::from(k), 65535.0), k);
        }
        // outside the levels, the nearest end (NaN, which no caller passes, as 0)
        for (v, k) in [
            (-3.0, 0),
            (-0.0, 0),
            (65536.0, 65535),
            (1e300, 65535),
            (f64::NAN, 0),
        ] {
            assert_eq!(whole(v, 65535.0), k, "{v}");
        }
        assert_eq!((whole(255.0, 255.0), whole(300.0, 255.0)), (255, 255));
        // gray8 is round(v · 255), ties to even, then the conversion `as` makes
        for i in 0..=100_000 {
            let v = f64::from(i) / 100_000.0;
            assert_eq!(gray8(v), (v * 255.0).round_ties_even() as u8, "{v}");
        }
    }

    #[test]
    fn gray_round_trips_every_format_and_depth() {
        let tmp = scratch("roundtrip");
        let dir = tmp.path();
        for (name, bits) in [
            ("g8.png", 8),
            ("g16.png", 16),
            ("g8.tif", 8),
            ("g16.tiff", 16),
            ("g8.bmp", 8),
        ] {
            let max = (1u32 << bits) - 1;
            let m = levels(13, 29, max);
            let path = dir.join(name);
            save_gray(&path, m.view(), bits).unwrap();
            assert_eq!(read(&path).unwrap(), m, "{name} is not exact to k/{max}");
        }
        // JPEG is lossy even at quality 100: close, not exact.
        let smooth = Array2::from_shape_fn((16, 24), |(i, j)| {
            ((i * 24 + j) as f64 / 383.0 * 255.0).round() / 255.0
        });
        save_gray(&dir.join("g.jpg"), smooth.view(), 8).unwrap();
        let back = read(&dir.join("g.jpg")).unwrap();
        assert!(back
            .iter()
            .zip(&smooth)
            .all(|(a, b)| (a - b).abs() <= 3.0 / 255.0));
        // .npy keeps every f64 exactly, whatever its range (bits do not apply).
        let mut m = levels(5, 7, 1000).mapv(|v| v * 1e300 - 3.5);
        m[[0, 0]] = f64::NAN;
        m[[0, 1]] = f64::NEG_INFINITY;
        m[[4, 6]] = -0.0;
        save_gray(&dir.join("m.npy"), m.t(), 8).unwrap();
        let back = read(&dir.join("m.npy")).unwrap();
        assert_eq!(back.dim(), (7, 5));
        assert!(back
            .iter()
            .zip(m.t())
            .all(|(a, b)| a.to_bits() == b.to_bits()));
    }

    #[test]
    fn rgb_round_trips() {
        let tmp = scratch("rgb");
        let dir = tmp.path();
        // The mandrill's first pixel: (164, 150, 71) → 145 (tests/dev/expected_gray.py).
        let r = Array2::from_elem((3, 4), 164.0 / 255.0);
        let g = Array2::from_elem((3, 4), 150.0 / 255.0);
        let b = Array2::from_elem((3, 4), 71.0 / 255.0);
        for name in ["c.png", "c.tif", "c.bmp"] {
            save_rgb(&dir.join(name), r.view(), g.view(), b.view()).unwrap();
            assert_eq!(
                read(&dir.join(name)).unwrap(),
                Array2::from_elem((3, 4), 145.0 / 255.0),
                "{name}"
            );
        }
        // Equal channels are gray: exact.
        let m = levels(6, 5, 255);
        save_rgb(&dir.join("gray.png"), m.view(), m.view(), m.view()).unwrap();
        assert_eq!(read(&dir.join("gray.png")).unwrap(), m);
        save_rgb(&dir.join("c.jpg"), r.view(), g.view(), b.view()).unwrap();
        assert!(read(&dir.join("c.jpg"))
            .unwrap()
            .iter()
            .all(|v| (v - 145.0 / 255.0).abs() <= 3.0 / 255.0));
    }

    #[test]
    fn save_refusals() {
        let tmp = scratch("refusals");
        let dir = tmp.path();
        let m = Array2::from_elem((2, 2), 0.5);
        let e = save_gray(&dir.join("a.jpg"), m.view(), 16).unwrap_err();
        assert!(e.contains("8 bits") && e.contains(".png"), "{e}");
        assert!(save_gray(&dir.join("a.bmp"), m.view(), 16).is_err());
        assert!(save_gray(&dir.join("a.png"), m.view(), 12)
            .unwrap_err()
            .contains("8 or 16"));
        let e = save_gray(&dir.join("a.webp"), m.view(), 8).unwrap_err();
        assert!(e.contains(SAVABLE), "{e}");
        assert!(save_gray(&dir.join("noext"), m.view(), 8).is_err());
        assert!(save_rgb(&dir.join("a.npy"), m.view(), m.view(), m.view()).is_err());
        assert!(save_gray(&dir.join("e.png"), Array2::<f64>::zeros((0, 3)).view(), 8).is_err());
        assert_eq!(
            fs::read_dir(dir).unwrap().count(),
            0,
            "a refused save left a file"
        );
    }

    #[test]
    fn julia_gray_of_16_bit_rgb() {
        // Expected levels from tests/dev/expected_gray.py (Julia's Float32 arithmetic); the last
        // three are one level above the exact (and Float64) rounding.
        let cases = [
            ([65535, 65535, 65535], 65535),
            ([1, 2, 3], 2),
            ([44427, 61738, 21944], 52026),
            ([40732, 54258, 62870], 51196),
            ([13399, 52160, 23327], 37284),
        ];
        let image = ImageBuffer::from_fn(cases.len() as u32, 1, |x, _| {
            image::Rgb(cases[x as usize].0)
        });
        let tmp = scratch("rgb16");
        let path = tmp.path().join("rgb16.png");
        DynamicImage::ImageRgb16(image).save(&path).unwrap();
        let gray = read(&path).unwrap();
        for (j, (_, expected)) in cases.iter().enumerate() {
            assert_eq!(gray[[0, j]], f64::from(*expected) / 65535.0, "pixel {j}");
        }
    }

    #[test]
    fn shared_images() {
        let io = disk();
        let at = |name: &str| text(&PathBuf::from(SHARED).join(name));
        for name in ["mandrill.tiff", "cameraman.tif", "jetplane.tif"] {
            assert_eq!(
                io.image_shape(&at(name)).unwrap(),
                Shape::new(512, 512),
                "{name}"
            );
        }
        // Expected gray levels from tests/dev/expected_gray.py, which parses the TIFFs itself and
        // applies Colors.jl's formula with Julia's Float32 arithmetic. (0, 57) sums to 98 500:
        // Float32 rounding makes it 99 where ties-to-even on the exact 98.5 would give 98.
        let expect = |name: &str, pixels: &[((usize, usize), u8)]| {
            let gray = io.read_gray(&at(name)).unwrap();
            assert_eq!(gray.dim(), (512, 512));
            for &((i, j), k) in pixels {
                assert_eq!(
                    gray[[i, j]],
                    f64::from(k) / 255.0,
                    "{name} pixel ({i}, {j})"
                );
            }
            gray
        };
        let mandrill = [
            ((0, 0), 145),
            ((0, 1), 56),
            ((1, 0), 116),
            ((100, 200), 67),
            ((511, 511), 4),
        ];
        expect("mandrill.tiff", &mandrill);
        expect(
            "mandrill.tiff",
            &[((0, 57), 99), ((3, 415), 160), ((5, 409), 46)],
        );
        expect(
            "cameraman.tif",
            &[
                ((0, 0), 156),
                ((0, 511), 152),
                ((256, 256), 19),
                ((511, 0), 121),
            ],
        );
        // Gray + alpha with a malformed ExtraSamples value (999), which the image crate refuses
        // (checked, so `tiff_gray` stays needed): read through the `tiff` crate, the
        // (all-opaque) alpha dropped.
        let jet_path = PathBuf::from(SHARED).join("jetplane.tif");
        assert!(ImageReader::open(&jet_path).unwrap().decode().is_err());
        let jet = expect(
            "jetplane.tif",
            &[
                ((0, 0), 193),
                ((0, 511), 147),
                ((256, 256), 101),
                ((511, 0), 213),
            ],
        );
        assert!((jet.mean().unwrap() * 255.0 - 178.01620864868164).abs() < 1e-9);
        let inputs = io.inputs();
        assert_eq!(inputs.len(), 3, "each file recorded once: {inputs:?}");
        for (path, sha) in inputs {
            assert_eq!(sha, sha256_hex(&fs::read(&path).unwrap()));
            assert_eq!(sha.len(), 64);
        }
    }

    #[test]
    fn read_refusals() {
        let tmp = scratch("unreadable");
        let dir = tmp.path();
        let io = DiskIo::new(dir.to_path_buf(), dir.to_path_buf());
        let missing = Text {
            value: "sub/missing.png".into(),
            origin: Origin::Script,
        };
        let e = io.read_gray(&missing).unwrap_err();
        assert!(
            e.contains("`sub/missing.png`")
                && e.contains(&dir.join("sub/missing.png").display().to_string()),
            "{e}"
        );
        assert!(e.contains("no such file"), "{e}");
        assert!(io
            .image_shape(&missing)
            .unwrap_err()
            .contains("no such file"));

        fs::write(dir.join("notes.png"), "not an image at all").unwrap();
        let e = read(&dir.join("notes.png")).unwrap_err();
        assert!(e.contains("not an image") && e.contains("PNG, TIFF"), "{e}");
        // A format the image crate knows but imgx does not read.
        fs::write(dir.join("x.webp"), b"RIFF\x10\0\0\0WEBPVP8 \0\0\0\0").unwrap();
        assert!(read(&dir.join("x.webp"))
            .unwrap_err()
            .contains("not supported"));

        let sizes = [
            ("(0, 5)", "no pixels"),
            ("(40000, 10)", "32768"),
            ("(20000, 20000)", "2^28"),
            ("(3,)", "2-D"),
            ("(2, 2, 2)", "2-D"),
        ];
        for (shape, reason) in sizes {
            let path = dir.join("a.npy");
            fs::write(&path, npy_file("<f8", false, shape, &[])).unwrap();
            let e = io.image_shape(&text(&path)).unwrap_err();
            assert!(e.contains(reason), "{shape}: {e}");
            assert!(read(&path).unwrap_err().contains(reason), "{shape}");
        }
        for (descr, reason) in [
            (">f8", "little-endian"),
            ("<i4", "float32"),
            ("<c16", "float64"),
        ] {
            fs::write(
                dir.join("t.npy"),
                npy_file(descr, false, "(1, 1)", &[0; 16]),
            )
            .unwrap();
            assert!(
                read(&dir.join("t.npy")).unwrap_err().contains(reason),
                "{descr}"
            );
        }
        // A BMP header announcing 40000 columns: refused from the header, nothing decoded.
        let mut bmp = b"BM".to_vec();
        for v in [54u32 + 12, 0, 54, 40, 40000, 1] {
            bmp.extend(v.to_le_bytes());
        }
        bmp.extend([1, 0, 24, 0]);
        bmp.extend([0; 24 + 12]);
        fs::write(dir.join("wide.bmp"), &bmp).unwrap();
        let e = io.image_shape(&text(&dir.join("wide.bmp"))).unwrap_err();
        assert!(e.contains("1×40000") && e.contains("32768"), "{e}");
    }

    #[test]
    fn npy_layouts() {
        let tmp = scratch("npy");
        let dir = tmp.path();
        let values = [1.5f32, -2.0, 3.25, 1e30, 0.1, f32::MIN_POSITIVE];
        let data: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        // C order: rows first.
        fs::write(dir.join("c.npy"), npy_file("<f4", false, "(2, 3)", &data)).unwrap();
        let c = read(&dir.join("c.npy")).unwrap();
        assert_eq!(
            c,
            Array2::from_shape_fn((2, 3), |(i, j)| f64::from(values[i * 3 + j]))
        );
        // Fortran order: columns first; returned in standard layout.
        fs::write(dir.join("f.npy"), npy_file("<f4", true, "(2, 3)", &data)).unwrap();
        let f = read(&dir.join("f.npy")).unwrap();
        assert_eq!(
            f,
            Array2::from_shape_fn((2, 3), |(i, j)| f64::from(values[j * 2 + i]))
        );
        assert!(f.is_standard_layout());
        // Data shorter or longer than the shape: refused.
        for len in [0, 23, 25] {
            let mut bytes = data.clone();
            bytes.resize(len, 0);
            fs::write(dir.join("t.npy"), npy_file("<f4", false, "(2, 3)", &bytes)).unwrap();
            assert!(
                read(&dir.join("t.npy")).unwrap_err().contains("needs 24"),
                "{len}"
            );
        }
        // What save_gray writes, numpy reads: version 1.0 header, data 64-byte aligned.
        let bytes = npy_bytes(Array2::from_elem((2, 3), 1.0).view());
        assert_eq!(&bytes[..8], b"\x93NUMPY\x01\x00");
        assert_eq!((bytes.len() - 6 * 8) % 64, 0);
        assert!(String::from_utf8_lossy(&bytes[10..])
            .starts_with("{'descr': '<f8', 'fortran_order': False, 'shape': (2, 3), }"));
    }

    /// Small files of every readable format, generated here.
    fn corpus() -> Vec<(&'static str, Vec<u8>)> {
        let rgb = RgbImage::from_fn(37, 23, |x, y| {
            Rgb([(x * 7) as u8, (y * 11) as u8, (x * y) as u8])
        });
        let image = DynamicImage::ImageRgb8(rgb);
        let mut files: Vec<_> = [
            ImageFormat::Png,
            ImageFormat::Tiff,
            ImageFormat::Jpeg,
            ImageFormat::Bmp,
            ImageFormat::Gif,
        ]
        .into_iter()
        .map(|format| {
            let mut bytes = Cursor::new(Vec::new());
            image.write_to(&mut bytes, format).unwrap();
            (format.extensions_str()[0], bytes.into_inner())
        })
        .collect();
        files.push(("npy", npy_bytes(levels(4, 3, 255).view())));
        files
    }

    #[test]
    fn corrupt_files_are_refused_without_panics() {
        for (name, bytes) in corpus() {
            assert_eq!(
                decode(&bytes).unwrap().dim().0,
                if name == "npy" { 4 } else { 23 },
                "{name}"
            );
            let n = bytes.len();
            // Cutting into PNG's IEND chunk or GIF's closing bytes loses no pixel.
            let trailer = match name {
                "png" => 12,
                "gif" => 3,
                _ => 0,
            };
            for len in [
                0,
                1,
                5,
                8,
                12,
                16,
                30,
                60,
                n / 3,
                n / 2,
                n - 13,
                n - 4,
                n - 2,
                n - 1,
            ] {
                // Unguarded: a decoder panic fails the test.
                match decode(&bytes[..len]) {
                    Ok(m) => {
                        assert!(
                            len >= n - trailer,
                            "{name} truncated to {len} of {n} bytes was accepted"
                        );
                        assert_eq!(m, decode(&bytes).unwrap());
                    }
                    Err(e) => assert!(
                        e.contains("truncated")
                            || e.contains("corrupt")
                            || e.contains("not an image"),
                        "{name} at {len}: {e}"
                    ),
                }
            }
            for at in 0..n {
                let mut flipped = bytes.clone();
                flipped[at] ^= 0xff;
                // A flipped pixel byte may still decode; what matters is no panic.
                let _ = decode(&flipped);
                let _ = probe(Cursor::new(&flipped[..]));
            }
        }
    }

    #[test]
    fn corrupt_gray_alpha_tiff_is_refused_without_panics() {
        // jetplane.tif goes through `tiff_gray`: 8 header bytes, pixel strips from byte 24,
        // then its tags (IFD) in the last 794 bytes.
        let bytes = fs::read(PathBuf::from(SHARED).join("jetplane.tif")).unwrap();
        let n = bytes.len();
        for len in [0, 8, 24, 1000, n / 2, n - 1000, n - 1] {
            assert!(
                decode(&bytes[..len]).is_err(),
                "jetplane truncated to {len}"
            );
        }
        for at in (0..24).chain(n - 800..n) {
            let mut flipped = bytes.clone();
            flipped[at] ^= 0xff;
            let _ = decode(&flipped);
        }
    }

    #[test]
    fn float_gray_tiff_values_are_taken_as_they_are() {
        use tiff::encoder::{colortype::Gray32Float, TiffEncoder};
        let values = [0.0f32, 0.25, 1.0, -1.5, 7.0, 1e-8];
        let mut bytes = Cursor::new(Vec::new());
        let mut encoder = TiffEncoder::new(&mut bytes).unwrap();
        encoder.write_image::<Gray32Float>(3, 2, &values).unwrap();
        let gray = decode(bytes.get_ref()).unwrap();
        assert_eq!(
            gray,
            Array2::from_shape_fn((2, 3), |(i, j)| f64::from(values[i * 3 + j]))
        );
    }

    #[test]
    fn decoder_panics_become_errors() {
        let e = guarded::<()>(|| panic!("decoder bug")).unwrap_err();
        assert!(e.contains("decoder failed"), "{e}");
    }

    #[test]
    fn cached_and_checked_against_the_checked_shape() {
        let tmp = scratch("cache");
        let dir = tmp.path();
        let path = dir.join("a.png");
        let m = levels(3, 4, 255);
        save_gray(&path, m.view(), 8).unwrap();
        let io = disk();
        assert_eq!(io.image_shape(&text(&path)).unwrap(), Shape::new(3, 4));
        assert_eq!(io.read_gray(&text(&path)).unwrap(), m);
        // Decoded once: later reads come from the cache, even if the file changes.
        fs::write(&path, "garbage").unwrap();
        assert_eq!(io.read_gray(&text(&path)).unwrap(), m);
        assert_eq!(io.inputs().len(), 1);
        // A file that changes shape between the check and the run is refused.
        let other = dir.join("b.png");
        save_gray(&other, m.view(), 8).unwrap();
        let io = disk();
        io.image_shape(&text(&other)).unwrap();
        save_gray(&other, m.t(), 8).unwrap();
        assert!(io.read_gray(&text(&other)).unwrap_err().contains("changed"));
        assert!(io.inputs().is_empty());
    }

    #[test]
    fn in_order_hands_over_in_order_and_stops_at_the_first_error() {
        use std::sync::atomic::AtomicUsize;
        use std::time::Duration;
        // later items are made faster, so they are done first and must wait their turn
        let make = |i: usize| {
            std::thread::sleep(Duration::from_micros(((20 - i % 20) * 50) as u64));
            i * i
        };
        for threads in [1, 2, 3, 8] {
            for n in [0, 1, 2, 7, 40] {
                let mut got = Vec::new();
                in_order(n, threads, make, |r| {
                    got.push(r);
                    Ok(())
                })
                .unwrap();
                assert_eq!(got, (0..n).map(|i| i * i).collect::<Vec<_>>());
            }
            // `take` fails at item 5: nothing after it is taken, and the makers stop within
            // their look-ahead of 2 · threads
            let made = AtomicUsize::new(0);
            let mut taken = 0;
            let e = in_order(
                1000,
                threads,
                |i| {
                    made.fetch_add(1, Ordering::Relaxed);
                    make(i)
                },
                |_| {
                    taken += 1;
                    if taken == 6 {
                        Err(io::Error::other("disk full"))
                    } else {
                        Ok(())
                    }
                },
            )
            .unwrap_err();
            assert_eq!((e.to_string(), taken), ("disk full".to_string(), 6));
            assert!(made.into_inner() <= 6 + 2 * threads);
            // a panic in `make` reaches the caller
            let panicked = catch_unwind(AssertUnwindSafe(|| {
                in_order(9, threads, |i| assert!(i != 4, "item 4"), |()| Ok(()))
            }));
            assert!(panicked.is_err());
        }
    }

    #[test]
    fn atomic_writes_leave_no_temporary_file() {
        let tmp = scratch("atomic");
        let dir = tmp.path();
        let path = dir.join("new/nested/out.csv");
        write_atomic(&path, b"a,b\n1,2\n").unwrap();
        let sha = write_atomic(&path, b"replaced\n").unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"replaced\n");
        // as `printf 'replaced\n' | sha256sum` gives it
        assert_eq!(
            sha,
            "e2208f01e42b2cab0fef975b55dc70d39579dd3d0c5d0758c499baa5109ef187"
        );
        let names = |d: &Path| {
            fs::read_dir(d)
                .unwrap()
                .map(|e| e.unwrap().file_name())
                .collect::<Vec<_>>()
        };
        assert_eq!(names(&dir.join("new/nested")), ["out.csv"]);
        // A writer that fails halfway, after more than its buffer: the old file stays whole.
        let half = write_atomic_with(&path, |w| {
            w.write_all(&vec![7u8; 3 << 20])?;
            Err(io::Error::other("the encoder gave up"))
        });
        assert!(half.unwrap_err().contains("the encoder gave up"));
        assert_eq!(fs::read(&path).unwrap(), b"replaced\n");
        assert_eq!(names(&dir.join("new/nested")), ["out.csv"]);
        // A failed write (the target is a folder) leaves nothing behind either.
        fs::create_dir(dir.join("folder.png")).unwrap();
        let m = Array2::from_elem((2, 2), 0.25);
        assert!(save_gray(&dir.join("folder.png"), m.view(), 8).is_err());
        let mut left = names(dir);
        left.sort();
        assert_eq!(left, ["folder.png", "new"]);
        // The hash of a file written in many pieces, through the buffer and past it, is the
        // hash of the file.
        let big = dir.join("big.bin");
        let sha = write_atomic_with(&big, |w| {
            for k in 0..3000u32 {
                w.write_all(&k.to_le_bytes().repeat(k as usize % 700))?;
            }
            Ok(())
        })
        .unwrap();
        assert!(fs::metadata(&big).unwrap().len() > 1 << 20);
        assert_eq!(sha, sha256_hex(&fs::read(&big).unwrap()));
    }

    #[test]
    fn output_paths_stay_inside() {
        let tmp = scratch("outputs");
        let dir = tmp.path();
        let out = dir.join("out");
        let outside = dir.join("elsewhere");
        fs::create_dir_all(out.join("sub")).unwrap();
        fs::create_dir_all(&outside).unwrap();
        assert_eq!(
            output_path(&out, "a/b/c.png", false).unwrap(),
            out.join("a/b/c.png")
        );
        assert_eq!(
            output_path(&out, "./sub/../d.png", false).unwrap(),
            out.join("d.png")
        );
        assert_eq!(
            output_path(&out, "sub/e.png", false).unwrap(),
            out.join("sub/e.png")
        );
        // The output folder need not exist yet.
        assert_eq!(
            output_path(&dir.join("later"), "x.png", false).unwrap(),
            dir.join("later/x.png")
        );
        for (written, reason) in [
            ("/tmp/x.png", "absolute"),
            ("../x.png", "`..`"),
            ("sub/../../x.png", "`..`"),
            (".", "no file"),
        ] {
            let e = output_path(&out, written, false).unwrap_err();
            assert!(
                e.contains(reason) && e.contains("--allow-write-anywhere"),
                "{written}: {e}"
            );
        }
        #[cfg(unix)]
        {
            std::os::unix::fs::symlink(&outside, out.join("link")).unwrap();
            std::os::unix::fs::symlink(out.join("sub"), out.join("inner")).unwrap();
            let e = output_path(&out, "link/deep/x.png", false).unwrap_err();
            assert!(
                e.contains("symbolic link") && e.contains("--allow-write-anywhere"),
                "{e}"
            );
            assert!(output_path(&out, "link", false).is_err());
            assert_eq!(
                output_path(&out, "inner/x.png", false).unwrap(),
                out.join("inner/x.png")
            );
            assert_eq!(
                output_path(&out, "link/x.png", true).unwrap(),
                out.join("link/x.png")
            );
        }
        assert_eq!(
            output_path(&out, "/tmp/x.png", true).unwrap(),
            Path::new("/tmp/x.png")
        );
    }

    /// MemAvailable is read in kB and given in bytes: more than a MiB, less than the total.
    #[cfg(target_os = "linux")]
    #[test]
    fn available_memory_is_read_from_the_system() {
        let available = available_memory().expect("MemAvailable in /proc/meminfo");
        let info = fs::read_to_string("/proc/meminfo").unwrap();
        let total_kib: u64 = info
            .lines()
            .next()
            .unwrap()
            .split_whitespace()
            .nth(1)
            .unwrap()
            .parse()
            .unwrap();
        assert!(
            available > 1 << 20 && available <= total_kib * 1024,
            "{available}"
        );
    }
}
