// Package checkpoints holds rgflow's on-disk array and checkpoint formats: .npz for samples and latents,
// safetensors for checkpoints, and the atomic-write, latest-valid and keep-N machinery of a resumable run
// directory. It depends only on the standard library; the rest of rgflow converts tensors to and from [Array].
//
// # Arrays
//
// An [Array] is a named n-d array in C (row-major) order. Data is one of []float32, []float64, []int64, []int32 or
// []uint8 with exactly Π Shape elements; a 0-d array (Shape empty) has one element, and a shape with a zero
// dimension has none. All bytes on disk are little-endian. Names are non-empty UTF-8 and unique within a file.
//
// # .npz (WriteNPZ, ReadNPZ)
//
// An uncompressed zip of NAME.npy members, one per array, in the order given. Each member is an .npy v1.0 file
// byte-identical to what numpy ≥ 1.24 np.save writes: the magic "\x93NUMPY", version 1.0, a little-endian uint16
// header length, and the header dict
//
//	{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }
//
// padded with spaces (numpy's growth padding included) and a final '\n' so that the data starts at a multiple of 64
// bytes. The descr is '<f4', '<f8', '<i8', '<i4' or '|u1'. Python: np.load(path)["z"]. ReadNPZ also accepts stored or
// deflated members and .npy v2.0/v3.0 headers, and rejects everything else (other dtypes, big-endian data,
// fortran_order True, sizes that disagree with the header, non-.npy members, duplicate names, trailing bytes).
//
// # safetensors (WriteSafetensors, ReadSafetensors)
//
// The Hugging Face format (https://huggingface.co/docs/safetensors): an 8-byte little-endian header length N (at
// most 100,000,000, the reference reader's limit), an N-byte UTF-8 JSON header, then the byte buffer. The header
// maps each tensor name to
//
//	{"dtype": "F32"|"F64"|"I64"|"I32"|"U8", "shape": [...], "data_offsets": [begin, end]}
//
// (offsets relative to the buffer) and "__metadata__" to a string→string map. The writer emits compact JSON with
// "__metadata__" first (when non-empty) and tensors sorted by name, lays the tensors out contiguously in that order,
// and pads the header with spaces to a multiple of 8 bytes as the reference implementation does. Python:
// safetensors.numpy.load_file(path), or json.loads of the header and np.frombuffer of each slice. The reader
// validates everything and never trusts a size it has not checked against the file length: the header must start
// with '{', be valid JSON with no duplicate keys, use only the five dtypes, have non-negative dims whose product
// matches the offsets, and the offsets must tile the buffer exactly (no overlap, gap, truncation or trailing bytes).
//
// # Checkpoints (Save, Load, Latest, Prune)
//
// A [Checkpoint] is stored as DIR/step-NNNNNNN.safetensors (step zero-padded to 7 digits; more digits past
// 9,999,999). Weights are stored as tensors "weights/<name>", optimiser state as "optim/<name>", buffers
// (non-trained model state) as "buffers/<name>" and moving averages of the weights as "ema/<name>". The metadata holds
// "format_version" (= [FormatVersion]), "step" (decimal), "rng" (standard base64), "config" (the JSON text, as is)
// and each Extra entry as "extra/<key>"; rng and config are omitted when empty, and read back as nil. Load rejects
// other format versions, unknown metadata keys or tensor prefixes, and a step that disagrees with the file name.
//
// Every file is written with [WriteFileAtomic]: a temporary ".BASE.tmp-*" file in the same directory is written,
// fsynced, closed and renamed over the target, and the directory is fsynced, so a crash at any point leaves either
// the old file or the complete new one. [Latest] returns the newest checkpoint that loads, reporting the ones it had
// to skip; [Prune] keeps the newest K checkpoints whose structure checks out and removes older ones and stale
// temporary files.
//
// Errors name the file and the problem, e.g.
//
//	checkpoints: run/step-0000100.safetensors: tensor "weights/a": data_offsets [0, 12] hold 12 bytes, want 16 for F32 (2,2)
package checkpoints
