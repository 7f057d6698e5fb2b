// Package delta compresses object states and computes binary deltas between
// two versions of a state, as described in PROTOCOL.md ("Payload
// encodings").
//
// Everything here is plain zstd (github.com/klauspost/compress/zstd), so any
// zstd implementation can interoperate:
//
//   - Compress/Decompress: one zstd frame, no dictionary.
//   - Encode/Apply: a delta is one zstd frame compressed with the older
//     version's data as a raw-content dictionary (dictionary ID 0). This is
//     what the reference tool calls "--patch-from" and libzstd calls
//     ZSTD_CCtx_refPrefix/ZSTD_DCtx_refPrefix.
//
// Decoding never trusts its input: every decode takes a maximum output size,
// and a frame that would exceed it fails with ErrTooLarge before the output
// grows much past that size (see Decompress).
//
// Encoders and decoders are expensive to build (hash tables of a few hundred
// KiB), so they are pooled and reused; the pools are the only package-level
// state. A Cache computes each delta once and shares it between every link
// that needs it.
package delta
