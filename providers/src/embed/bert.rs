//! A BERT encoder for CPU inference, written for throughput.
//!
//! Same maths as Hugging Face's `BertModel` in eval mode (what
//! sentence-transformers runs), organised for a CPU:
//!
//! - no padding: the tokens of every text in a sub-batch are packed into one
//!   `tokens × hidden` matrix, so the dense layers never compute a pad token,
//!   and attention runs per text and per head over that text's own tokens;
//! - the dense layers are single matrix products (`gemm`, the kernels candle
//!   uses, with AVX-512 / AVX2+FMA picked at run time), with bias, GELU,
//!   residual and LayerNorm fused into one pass over the output;
//! - every step runs on all threads of the caller's rayon pool; GELU's `erf`
//!   and softmax's `exp` are branch-free f32 approximations (error < 2e-7)
//!   that vectorise, instead of scalar `libm` calls.
//!
//! Weights come from a `model.safetensors` (F32) with the usual BERT names,
//! with or without a `bert.` prefix.

use std::collections::HashMap;
use std::path::Path;

use gemm::{gemm, Parallelism};
use rayon::prelude::*;

/// The parts of `config.json` the encoder needs.
#[derive(Debug, Clone, serde::Deserialize)]
pub struct BertConfig {
    pub vocab_size: usize,
    pub hidden_size: usize,
    pub num_hidden_layers: usize,
    pub num_attention_heads: usize,
    pub intermediate_size: usize,
    pub max_position_embeddings: usize,
    #[serde(default = "default_type_vocab")]
    pub type_vocab_size: usize,
    #[serde(default = "default_eps")]
    pub layer_norm_eps: f64,
    #[serde(default = "default_act")]
    pub hidden_act: String,
    #[serde(default)]
    pub position_embedding_type: Option<String>,
}

fn default_type_vocab() -> usize {
    2
}
fn default_eps() -> f64 {
    1e-12
}
fn default_act() -> String {
    "gelu".into()
}

struct Linear {
    /// `out × in`, row-major (as stored by PyTorch).
    weight: Vec<f32>,
    bias: Vec<f32>,
    n_in: usize,
    n_out: usize,
}

struct Norm {
    weight: Vec<f32>,
    bias: Vec<f32>,
}

struct Layer {
    /// Query, key and value in one `3·hidden × hidden` product.
    qkv: Linear,
    attn_out: Linear,
    attn_norm: Norm,
    ffn_in: Linear,
    ffn_out: Linear,
    ffn_norm: Norm,
}

/// The loaded encoder.
pub struct Bert {
    config: BertConfig,
    word: Vec<f32>,
    position: Vec<f32>,
    token_type0: Vec<f32>,
    emb_norm: Norm,
    layers: Vec<Layer>,
    eps: f32,
}

/// A safetensors file read whole: header (name → dtype, shape, byte range) and data.
struct SafeTensors {
    data: Vec<u8>,
    start: usize,
    entries: HashMap<String, (String, Vec<usize>, usize, usize)>,
}

impl SafeTensors {
    fn read(path: &Path) -> Result<Self, String> {
        let data = std::fs::read(path).map_err(|e| e.to_string())?;
        if data.len() < 8 {
            return Err("file too short to be safetensors".into());
        }
        let header_len = u64::from_le_bytes(data[..8].try_into().unwrap()) as usize;
        let start = 8usize
            .checked_add(header_len)
            .filter(|&s| s <= data.len())
            .ok_or("bad safetensors header length")?;
        let header: HashMap<String, serde_json::Value> = serde_json::from_slice(&data[8..start])
            .map_err(|e| format!("safetensors header: {e}"))?;
        let mut entries = HashMap::new();
        for (name, info) in header {
            if name == "__metadata__" {
                continue;
            }
            let dtype = info["dtype"].as_str().unwrap_or_default().to_string();
            let shape: Vec<usize> = info["shape"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|d| d.as_u64())
                        .map(|d| d as usize)
                        .collect()
                })
                .unwrap_or_default();
            let offsets = info["data_offsets"].as_array().cloned().unwrap_or_default();
            let (begin, end) = match (
                offsets.first().and_then(|v| v.as_u64()),
                offsets.get(1).and_then(|v| v.as_u64()),
            ) {
                (Some(b), Some(e)) => (b as usize, e as usize),
                _ => return Err(format!("tensor {name}: no data_offsets")),
            };
            if begin > end || start + end > data.len() {
                return Err(format!("tensor {name}: data_offsets out of range"));
            }
            entries.insert(name, (dtype, shape, begin, end));
        }
        Ok(SafeTensors {
            data,
            start,
            entries,
        })
    }

    /// The tensor `name` (tried with and without a `bert.` prefix) as f32,
    /// checked against `shape`.
    fn get(&self, name: &str, shape: &[usize]) -> Result<Vec<f32>, String> {
        let prefixed = format!("bert.{name}");
        let (dtype, found, begin, end) = self
            .entries
            .get(name)
            .or_else(|| self.entries.get(&prefixed))
            .or_else(|| {
                // Old checkpoints name LayerNorm parameters gamma / beta.
                let old = name
                    .replace("LayerNorm.weight", "LayerNorm.gamma")
                    .replace("LayerNorm.bias", "LayerNorm.beta");
                self.entries
                    .get(&old)
                    .or_else(|| self.entries.get(&format!("bert.{old}")))
            })
            .ok_or_else(|| format!("tensor {name} not found"))?;
        if found.as_slice() != shape {
            return Err(format!(
                "tensor {name}: shape {found:?}, expected {shape:?}"
            ));
        }
        let bytes = &self.data[self.start + begin..self.start + end];
        let count: usize = shape.iter().product();
        match dtype.as_str() {
            "F32" if bytes.len() == count * 4 => Ok(bytes
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect()),
            "F16" if bytes.len() == count * 2 => Ok(bytes
                .chunks_exact(2)
                .map(|b| f16_to_f32(u16::from_le_bytes([b[0], b[1]])))
                .collect()),
            "BF16" if bytes.len() == count * 2 => Ok(bytes
                .chunks_exact(2)
                .map(|b| f32::from_bits((u16::from_le_bytes([b[0], b[1]]) as u32) << 16))
                .collect()),
            other => Err(format!(
                "tensor {name}: dtype {other} with {} bytes is not supported",
                bytes.len()
            )),
        }
    }
}

fn f16_to_f32(h: u16) -> f32 {
    let sign = ((h >> 15) as u32) << 31;
    let exp = ((h >> 10) & 0x1f) as u32;
    let frac = (h & 0x3ff) as u32;
    let bits = match exp {
        0 if frac == 0 => sign,
        0 => {
            // Subnormal: renormalise.
            let mut e = 127 - 15 + 1;
            let mut f = frac;
            while f & 0x400 == 0 {
                f <<= 1;
                e -= 1;
            }
            sign | ((e as u32) << 23) | ((f & 0x3ff) << 13)
        }
        0x1f => sign | 0x7f80_0000 | (frac << 13),
        _ => sign | ((exp + 127 - 15) << 23) | (frac << 13),
    };
    f32::from_bits(bits)
}

impl Bert {
    pub fn load(weights: &Path, config: BertConfig) -> Result<Self, String> {
        if config.hidden_act != "gelu" {
            return Err(format!(
                "hidden_act {:?} is not supported (only \"gelu\")",
                config.hidden_act
            ));
        }
        if let Some(t) = &config.position_embedding_type {
            if t != "absolute" {
                return Err(format!(
                    "position_embedding_type {t:?} is not supported (only \"absolute\")"
                ));
            }
        }
        if config.num_attention_heads == 0
            || !config
                .hidden_size
                .is_multiple_of(config.num_attention_heads)
        {
            return Err("hidden_size is not a multiple of num_attention_heads".into());
        }
        let st = SafeTensors::read(weights)?;
        let h = config.hidden_size;
        let linear = |name: &str, n_in: usize, n_out: usize| -> Result<Linear, String> {
            Ok(Linear {
                weight: st.get(&format!("{name}.weight"), &[n_out, n_in])?,
                bias: st.get(&format!("{name}.bias"), &[n_out])?,
                n_in,
                n_out,
            })
        };
        let norm = |name: &str| -> Result<Norm, String> {
            Ok(Norm {
                weight: st.get(&format!("{name}.weight"), &[h])?,
                bias: st.get(&format!("{name}.bias"), &[h])?,
            })
        };
        let mut layers = Vec::with_capacity(config.num_hidden_layers);
        for i in 0..config.num_hidden_layers {
            let p = format!("encoder.layer.{i}");
            let q = linear(&format!("{p}.attention.self.query"), h, h)?;
            let k = linear(&format!("{p}.attention.self.key"), h, h)?;
            let v = linear(&format!("{p}.attention.self.value"), h, h)?;
            let qkv = Linear {
                weight: [q.weight, k.weight, v.weight].concat(),
                bias: [q.bias, k.bias, v.bias].concat(),
                n_in: h,
                n_out: 3 * h,
            };
            layers.push(Layer {
                qkv,
                attn_out: linear(&format!("{p}.attention.output.dense"), h, h)?,
                attn_norm: norm(&format!("{p}.attention.output.LayerNorm"))?,
                ffn_in: linear(
                    &format!("{p}.intermediate.dense"),
                    h,
                    config.intermediate_size,
                )?,
                ffn_out: linear(&format!("{p}.output.dense"), config.intermediate_size, h)?,
                ffn_norm: norm(&format!("{p}.output.LayerNorm"))?,
            });
        }
        let token_types = st.get(
            "embeddings.token_type_embeddings.weight",
            &[config.type_vocab_size, h],
        )?;
        Ok(Bert {
            word: st.get("embeddings.word_embeddings.weight", &[config.vocab_size, h])?,
            position: st.get(
                "embeddings.position_embeddings.weight",
                &[config.max_position_embeddings, h],
            )?,
            token_type0: token_types[..h].to_vec(),
            emb_norm: norm("embeddings.LayerNorm")?,
            layers,
            eps: config.layer_norm_eps as f32,
            config,
        })
    }

    pub fn config(&self) -> &BertConfig {
        &self.config
    }

    /// Runs the encoder over `seqs` (token ids, each at most
    /// `max_position_embeddings` long, token type 0) and returns the mean of
    /// each sequence's last hidden states (not normalised), in order.
    ///
    /// `threads` > 1 splits every matrix product over the current rayon
    /// pool; 1 runs them on the calling thread (when sub-batches themselves
    /// run in parallel).
    pub fn mean_pooled(&self, seqs: &[&[u32]], threads: usize) -> Result<Vec<Vec<f32>>, String> {
        let h = self.config.hidden_size;
        let mut offsets = Vec::with_capacity(seqs.len() + 1);
        offsets.push(0usize);
        for s in seqs {
            if s.len() > self.config.max_position_embeddings {
                return Err(format!(
                    "a sequence of {} tokens is longer than the model's {} positions",
                    s.len(),
                    self.config.max_position_embeddings
                ));
            }
            if let Some(&bad) = s.iter().find(|&&id| id as usize >= self.config.vocab_size) {
                return Err(format!("token id {bad} is outside the vocabulary"));
            }
            offsets.push(offsets.last().unwrap() + s.len());
        }
        let total = *offsets.last().unwrap();
        if total == 0 {
            return Ok(vec![vec![0.0; h]; seqs.len()]);
        }
        let par = if threads > 1 {
            Parallelism::Rayon(threads)
        } else {
            Parallelism::None
        };

        // Embeddings: word + position + token type 0, then LayerNorm.
        let mut x = vec![0f32; total * h];
        x.par_chunks_mut(h).enumerate().for_each(|(row, out)| {
            let seq = offsets.partition_point(|&o| o <= row) - 1;
            let pos = row - offsets[seq];
            let id = seqs[seq][pos] as usize;
            let w = &self.word[id * h..(id + 1) * h];
            let p = &self.position[pos * h..(pos + 1) * h];
            for i in 0..h {
                out[i] = w[i] + p[i] + self.token_type0[i];
            }
            layer_norm_in_place(out, &self.emb_norm, self.eps);
        });

        let inter = self.config.intermediate_size;
        let mut qkv = vec![0f32; total * 3 * h];
        let mut ctx = vec![0f32; total * h];
        let mut tmp = vec![0f32; total * h];
        let mut ffn = vec![0f32; total * inter];
        for layer in &self.layers {
            // Self-attention.
            matmul_bias(&x, &layer.qkv, &mut qkv, total, par, true);
            self.attention(&qkv, &mut ctx, &offsets);
            matmul_bias(&ctx, &layer.attn_out, &mut tmp, total, par, false);
            residual_bias_norm(
                &mut x,
                &tmp,
                &layer.attn_out.bias,
                &layer.attn_norm,
                self.eps,
            );
            // Feed-forward.
            matmul_bias(&x, &layer.ffn_in, &mut ffn, total, par, false);
            let b = &layer.ffn_in.bias;
            ffn.par_chunks_mut(inter * 8)
                .for_each(|rows| gelu_bias_rows(rows, b));
            matmul_bias(&ffn, &layer.ffn_out, &mut tmp, total, par, false);
            residual_bias_norm(&mut x, &tmp, &layer.ffn_out.bias, &layer.ffn_norm, self.eps);
        }

        // Mean over each sequence's tokens.
        Ok((0..seqs.len())
            .map(|s| {
                let (a, b) = (offsets[s], offsets[s + 1]);
                let mut v = vec![0f32; h];
                for row in x[a * h..b * h].chunks_exact(h) {
                    for (acc, val) in v.iter_mut().zip(row) {
                        *acc += *val;
                    }
                }
                let n = (b - a).max(1) as f32;
                v.iter_mut().for_each(|e| *e /= n);
                v
            })
            .collect())
    }

    /// Multi-head self-attention of every sequence over its own tokens.
    /// `qkv` rows are `[q | k | v]`; writes the per-head contexts into `ctx`.
    fn attention(&self, qkv: &[f32], ctx: &mut [f32], offsets: &[usize]) {
        let h = self.config.hidden_size;
        let heads = self.config.num_attention_heads;
        let d = h / heads;
        let scale = 1.0 / (d as f32).sqrt();
        let stride = 3 * h;
        let ctx_ptr = SendPtr(ctx.as_mut_ptr());
        let n_seq = offsets.len() - 1;
        (0..n_seq * heads).into_par_iter().for_each(|job| {
            let (s, head) = (job / heads, job % heads);
            let (a, len) = (offsets[s], offsets[s + 1] - offsets[s]);
            if len == 0 {
                return;
            }
            let q = qkv[a * stride + head * d..].as_ptr();
            let k = qkv[a * stride + h + head * d..].as_ptr();
            let v = qkv[a * stride + 2 * h + head * d..].as_ptr();
            let mut scores = vec![0f32; len * len];
            let ctx = ctx_ptr;
            // SAFETY: all pointers stay inside `qkv` / `ctx` for the given
            // strides; each job writes a distinct (rows, head columns) block
            // of `ctx`.
            unsafe {
                // scores (len × len) = scale · Q (len × d) · Kᵀ (d × len)
                gemm(
                    len,
                    len,
                    d,
                    scores.as_mut_ptr(),
                    1,
                    len as isize,
                    false,
                    q,
                    1,
                    stride as isize,
                    k,
                    stride as isize,
                    1,
                    0.0,
                    scale,
                    false,
                    false,
                    false,
                    Parallelism::None,
                );
                softmax_rows(&mut scores, len);
                // ctx rows (len × d) = P (len × len) · V (len × d)
                let out = ctx.0.add(a * h + head * d);
                gemm(
                    len,
                    d,
                    len,
                    out,
                    1,
                    h as isize,
                    false,
                    scores.as_ptr(),
                    1,
                    len as isize,
                    v,
                    1,
                    stride as isize,
                    0.0,
                    1.0,
                    false,
                    false,
                    false,
                    Parallelism::None,
                );
            }
        });
    }
}

#[derive(Clone, Copy)]
struct SendPtr(*mut f32);
unsafe impl Send for SendPtr {}
unsafe impl Sync for SendPtr {}

/// `out (rows × n_out) = input (rows × n_in) · Wᵀ`, plus the bias when `with_bias`.
fn matmul_bias(
    input: &[f32],
    lin: &Linear,
    out: &mut [f32],
    rows: usize,
    par: Parallelism,
    with_bias: bool,
) {
    debug_assert_eq!(input.len(), rows * lin.n_in);
    debug_assert_eq!(out.len(), rows * lin.n_out);
    if with_bias {
        out.par_chunks_mut(lin.n_out)
            .for_each(|row| row.copy_from_slice(&lin.bias));
    }
    // SAFETY: shapes and strides describe exactly the three buffers.
    unsafe {
        gemm(
            rows,
            lin.n_out,
            lin.n_in,
            out.as_mut_ptr(),
            1,
            lin.n_out as isize,
            with_bias,
            input.as_ptr(),
            1,
            lin.n_in as isize,
            // Wᵀ: element (k, n) is weight[n · n_in + k].
            lin.weight.as_ptr(),
            lin.n_in as isize,
            1,
            1.0,
            1.0,
            false,
            false,
            false,
            par,
        );
    }
}

/// `x = LayerNorm(x + y + bias)`, row by row.
fn residual_bias_norm(x: &mut [f32], y: &[f32], bias: &[f32], norm: &Norm, eps: f32) {
    let h = bias.len();
    x.par_chunks_mut(h * 8)
        .zip(y.par_chunks(h * 8))
        .for_each(|(xs, ys)| residual_norm_rows(xs, ys, bias, norm, eps));
}

/// Compiles the body for AVX-512 and AVX2+FMA too, and picks at run time
/// (the crate is built for baseline x86-64, whose SSE2 would leave the
/// element-wise passes at a quarter of the width the CPU has).
macro_rules! multiversion {
    ($(#[$meta:meta])* fn $name:ident($($arg:ident: $ty:ty),* $(,)?) $body:block) => {
        $(#[$meta])*
        fn $name($($arg: $ty),*) {
            #[inline(always)]
            fn generic($($arg: $ty),*) $body
            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx512f,avx512vl,avx2,fma")]
                unsafe fn v4($($arg: $ty),*) {
                    generic($($arg),*)
                }
                #[target_feature(enable = "avx2,fma")]
                unsafe fn v3($($arg: $ty),*) {
                    generic($($arg),*)
                }
                if std::arch::is_x86_feature_detected!("avx512f") && std::arch::is_x86_feature_detected!("avx512vl") {
                    // SAFETY: the CPU has the features v4 is compiled for.
                    return unsafe { v4($($arg),*) };
                }
                if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
                    // SAFETY: the CPU has the features v3 is compiled for.
                    return unsafe { v3($($arg),*) };
                }
            }
            generic($($arg),*)
        }
    };
}

multiversion! {
    /// `row = gelu(row + bias)` for each row of `rows`.
    fn gelu_bias_rows(rows: &mut [f32], bias: &[f32]) {
        for row in rows.chunks_exact_mut(bias.len()) {
            for (v, b) in row.iter_mut().zip(bias) {
                *v = gelu(*v + *b);
            }
        }
    }
}

multiversion! {
    /// `x = LayerNorm(x + y + bias)` for each row.
    fn residual_norm_rows(xs: &mut [f32], ys: &[f32], bias: &[f32], norm: &Norm, eps: f32) {
        let h = bias.len();
        for (xr, yr) in xs.chunks_exact_mut(h).zip(ys.chunks_exact(h)) {
            for i in 0..h {
                xr[i] += yr[i] + bias[i];
            }
            layer_norm_in_place(xr, norm, eps);
        }
    }
}

multiversion! {
    /// Softmax of each `len`-long row.
    fn softmax_rows(scores: &mut [f32], len: usize) {
        for row in scores.chunks_exact_mut(len) {
            softmax_in_place(row);
        }
    }
}

#[inline(always)]
fn layer_norm_in_place(row: &mut [f32], norm: &Norm, eps: f32) {
    let n = row.len() as f32;
    let mean = sum_lanes(row) / n;
    let var = sum_sq_dev_lanes(row, mean) / n;
    let inv = 1.0 / (var + eps).sqrt();
    for ((v, w), b) in row.iter_mut().zip(&norm.weight).zip(&norm.bias) {
        *v = (*v - mean) * inv * w + b;
    }
}

#[inline(always)]
fn softmax_in_place(row: &mut [f32]) {
    let max = max_lanes(row);
    for v in row.iter_mut() {
        *v = fast_exp(*v - max);
    }
    let inv = 1.0 / sum_lanes(row);
    row.iter_mut().for_each(|v| *v *= inv);
}

// Reductions over 16 independent lanes: floating-point addition is not
// associative, so a plain `sum()` stays one scalar chain; spelled out in
// lanes, it vectorises.
const LANES: usize = 16;

#[inline(always)]
fn sum_lanes(xs: &[f32]) -> f32 {
    let mut acc = [0f32; LANES];
    let chunks = xs.chunks_exact(LANES);
    let tail: f32 = chunks.remainder().iter().sum();
    for c in chunks {
        for i in 0..LANES {
            acc[i] += c[i];
        }
    }
    acc.iter().sum::<f32>() + tail
}

#[inline(always)]
fn sum_sq_dev_lanes(xs: &[f32], mean: f32) -> f32 {
    let mut acc = [0f32; LANES];
    let chunks = xs.chunks_exact(LANES);
    let tail: f32 = chunks
        .remainder()
        .iter()
        .map(|v| (v - mean) * (v - mean))
        .sum();
    for c in chunks {
        for i in 0..LANES {
            let d = c[i] - mean;
            acc[i] += d * d;
        }
    }
    acc.iter().sum::<f32>() + tail
}

#[inline(always)]
fn max_lanes(xs: &[f32]) -> f32 {
    let mut acc = [f32::NEG_INFINITY; LANES];
    let chunks = xs.chunks_exact(LANES);
    let mut tail = f32::NEG_INFINITY;
    for &v in chunks.remainder() {
        tail = if v > tail { v } else { tail };
    }
    for c in chunks {
        for i in 0..LANES {
            acc[i] = if c[i] > acc[i] { c[i] } else { acc[i] };
        }
    }
    acc.iter().fold(tail, |m, &v| if v > m { v } else { m })
}

/// `e^x` for f32, branch-free (vectorises); relative error about 2e-7.
#[inline(always)]
pub(crate) fn fast_exp(x: f32) -> f32 {
    const LOG2E: f32 = std::f32::consts::LOG2_E;
    const LN2_HI: f32 = 0.693_359_4;
    const LN2_LO: f32 = -2.121_944_4e-4;
    // Below about -87.3 the result would be subnormal: flush to 0 through the exponent clamp.
    let x = x.clamp(-87.0, 88.0);
    // Round to nearest with the 1.5·2^23 trick (no call to `round`).
    let n = (x * LOG2E + 12_582_912.0) - 12_582_912.0;
    let r = x - n * LN2_HI - n * LN2_LO;
    // Cephes expf polynomial on [-ln2/2, ln2/2].
    let p = 1.987_569_1e-4f32;
    let p = p * r + 1.398_199_9e-3;
    let p = p * r + 8.333_452e-3;
    let p = p * r + 4.166_579_6e-2;
    let p = p * r + 1.666_666_5e-1;
    let p = p * r + 0.5;
    let e = p * r * r + r + 1.0;
    let scale = f32::from_bits(((n as i32 + 127) as u32) << 23);
    e * scale
}

/// `erf(x)`, Abramowitz & Stegun 7.1.26 (absolute error < 1.5e-7), branch-free.
#[inline(always)]
pub(crate) fn fast_erf(x: f32) -> f32 {
    let a = x.abs();
    let t = 1.0 / (1.0 + 0.327_591_1 * a);
    let poly = ((((1.061_405_4 * t - 1.453_152_1) * t + 1.421_413_7) * t - 0.284_496_74) * t
        + 0.254_829_6)
        * t;
    let y = 1.0 - poly * fast_exp(-a * a);
    y.copysign(x)
}

/// GELU with the exact (erf) form, as BERT's "gelu".
#[inline(always)]
pub(crate) fn gelu(x: f32) -> f32 {
    0.5 * x * (1.0 + fast_erf(x * std::f32::consts::FRAC_1_SQRT_2))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fast_exp_and_erf_are_accurate() {
        let mut worst_exp = 0f64;
        let mut worst_erf = 0f64;
        for i in -20000..=20000 {
            let x = i as f32 / 1000.0;
            let e = fast_exp(x) as f64;
            let want = (x as f64).exp();
            worst_exp = worst_exp.max(((e - want) / want).abs());
            let erf = fast_erf(x / 4.0) as f64;
            worst_erf = worst_erf.max((erf - erf_f64((x / 4.0) as f64)).abs());
        }
        assert!(worst_exp < 1e-6, "exp relative error {worst_exp}");
        assert!(worst_erf < 1e-6, "erf absolute error {worst_erf}");
        assert!(fast_exp(-1000.0) < 1e-37);
        assert!((gelu(1.0) - 0.841_344_7).abs() < 1e-6);
        assert!((gelu(-3.0) - -0.004_049_91).abs() < 1e-6);
    }

    /// Reference erf by its series / continued fraction, in f64.
    fn erf_f64(x: f64) -> f64 {
        if x.abs() < 3.0 {
            let mut sum = x;
            let mut term = x;
            for n in 1..200 {
                term *= -x * x / n as f64;
                sum += term / (2 * n + 1) as f64;
            }
            sum * 2.0 / std::f64::consts::PI.sqrt()
        } else {
            // erfc asymptotic continued fraction (Lentz would be nicer; this is enough here).
            let z = x.abs();
            let mut f = 0.0;
            for k in (1..60).rev() {
                f = (k as f64 / 2.0) / (z + f);
            }
            let erfc = (-z * z).exp() / std::f64::consts::PI.sqrt() / (z + f);
            (1.0 - erfc).copysign(x)
        }
    }

    #[test]
    fn f16_conversion() {
        assert_eq!(f16_to_f32(0x3c00), 1.0);
        assert_eq!(f16_to_f32(0xc000), -2.0);
        assert_eq!(f16_to_f32(0x0001), 5.960_464_5e-8);
    }
}
