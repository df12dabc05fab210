#!/bin/sh
# Seeds each target's corpus from the committed fixtures (the corpora are not
# committed; regenerate them with this script).
set -e
cd "$(dirname "$0")"
F=../fixtures
mkdir -p corpus/model_folder corpus/ztensor corpus/onnx corpus/safetensors corpus/gguf corpus/pickle_vm corpus/pytorch corpus/tpack corpus/pipeline corpus/numpy corpus/encode corpus/hdf5
find $F/numpy $F/hostile -name "*.np[yz]" -exec cp {} corpus/numpy/ \;
find $F/safetensors $F/hostile -name '*.safetensors' -exec cp {} corpus/safetensors/ \;
find $F/gguf -name '*.gguf' -exec cp {} corpus/gguf/ \;
find $F/onnx -name '*.onnx' -exec cp {} corpus/onnx/ \;
find $F/ztensor -name '*.zt' -exec cp {} corpus/ztensor/ \;
find $F/hdf5 -name '*.h5' -exec cp {} corpus/hdf5/ \;
for f in $(find $F/pytorch -name '*.pt' -o -name '*.ckpt' -o -name '*.pkl' -o -name '*.tar'); do
  cp "$f" corpus/pytorch/
done
# The VM target gets bare pickles: the hostile ones and each zip's data.pkl.
cp $F/pytorch/hostile/*.pkl $F/hostile/c6_pickle/*.pkl corpus/pickle_vm/
for z in $F/pytorch/valid/*.pt $F/pytorch/valid/*.ckpt; do
  n=$(basename "$z")
  python3 -c "import zipfile,sys; z=zipfile.ZipFile(sys.argv[1]); [open(sys.argv[2],'wb').write(z.read(x)) for x in z.namelist() if x.endswith('data.pkl')]" "$z" "corpus/pickle_vm/$n.pkl" 2>/dev/null || true
done
# tpack seeds are written by tensorcast itself from safetensors and GGUF fixtures.
T=../target/release/tensorcast
[ -x $T ] || (cd .. && cargo build --release)
for f in $F/safetensors/cast/*.safetensors $F/gguf/quants.gguf $F/gguf/metadata.gguf; do
  $T convert "$f" -o "corpus/tpack/$(basename "$f").tpack" --force --keep-quantized 2>/dev/null || \
  $T convert "$f" -o "corpus/tpack/$(basename "$f").tpack" --force
done
$T convert $F/safetensors/cast/source.safetensors -o corpus/tpack/raw.tpack --force --compress=none
# ...and by the independent Python writer (fixtures/tpack/spec), rejects included.
find $F/tpack $F/hostile -name '*.tpack' -exec cp {} corpus/tpack/ \;
for d in safetensors gguf pytorch tpack numpy; do cp corpus/$d/* corpus/pipeline/ 2>/dev/null || true; done
# The writer's codecs: tensor bytes of the safetensors fixtures behind a codec
# byte (rplanes2, rplanes4, planes8 at level 2, zstd) and a split byte.
for f in $F/safetensors/valid/*.safetensors $F/safetensors/cast/*.safetensors; do
  for pick in 5 6 12 1; do
    python3 -c "import sys; sys.stdout.buffer.write(bytes([int(sys.argv[2]), 128]) + open(sys.argv[1], 'rb').read())" "$f" $pick \
      > "corpus/encode/$(basename "$f").$pick"
  done
done
# Model folders: config.json, tokenizer.json, tokenizer_config.json and
# tokenizer.model of each model fixture, joined by "\n\0\n" (model_folder).
for d in $F/model/*/hf; do
  python3 -c "import sys,os; d=sys.argv[1]; sys.stdout.buffer.write(b'\n\0\n'.join(open(os.path.join(d,n),'rb').read() if os.path.exists(os.path.join(d,n)) else b'' for n in ('config.json','tokenizer.json','tokenizer_config.json','tokenizer.model')))" "$d" \
    > "corpus/model_folder/$(basename "$(dirname "$d")")"
done
# A lying server (remote_response): byte 0 picks the HEAD answer, bytes 1-2
# the object's size, then the object, five-byte reads, and one lie per
# request taken from the end. One seed per lie, over safetensors headers.
mkdir -p corpus/remote_response
python3 - "$F/safetensors/valid" <<'PY'
import os, struct, sys
files = sorted(os.listdir(sys.argv[1]))[:4]
for i in range(24):
    obj = open(os.path.join(sys.argv[1], files[i % len(files)]), 'rb').read()[:4096]
    reads = b''.join(bytes([k % 2]) + struct.pack('<HH', (37 * k) % (len(obj) + 2), 8 + 97 * k) for k in range(4))
    seed = bytes([i % 4]) + struct.pack('<H', len(obj)) + obj + reads + bytes([i]) * 8
    open(f'corpus/remote_response/lie{i:02}', 'wb').write(seed)
PY
