#!/usr/bin/env bash
# check.sh: do our BitNet GGUF files load and compute the same in llama.cpp?
#
#   tools/llamacpp-check/check.sh LLAMA_BIN [HF_DIR]
#
# LLAMA_BIN is a directory with llama.cpp's llama-perplexity (required) and
# optionally llama-tokenize and libh22-bitnet-relu2.so (see README.md). This
# script never fetches or builds llama.cpp. HF_DIR is a Hugging Face model
# (e.g. from `bitnet train`) in a shape llama.cpp's bitnet loader accepts;
# without it the models are random. Run from the repository root.
#
# Environment: WORK (default /tmp/llamacpp-check), TEXT (default: the last
# 12000 bytes of Go's Opticks test text), CTX (128), THREADS (2), TOL (0.01:
# the largest |mean NLL difference| in nats that passes), TOKENIZER (the
# tokenizer.json of random models; default the Opticks BPE).
set -euo pipefail

bin=${1:?usage: check.sh LLAMA_BIN [HF_DIR]}
hf=${2:-}
work=${WORK:-/tmp/llamacpp-check}
ctx=${CTX:-128}
threads=${THREADS:-2}
tol=${TOL:-0.01}
mkdir -p "$work"
ppl_bin="$bin/llama-perplexity"
[[ -x $ppl_bin ]] || { echo "check.sh: $ppl_bin not found" >&2; exit 2; }

text=${TEXT:-$work/eval.txt}
if [[ -z ${TEXT:-} ]]; then
	tail -c 12000 "$(go env GOROOT)/src/testdata/Isaac.Newton-Opticks.txt" >"$text"
fi

go build -o "$work/llamacpp-check" ./tools/llamacpp-check
go build -o "$work/bitnet" ./cmd/bitnet
if [[ -n $hf ]]; then
	"$work/llamacpp-check" models -out "$work/models" -hf "$hf" >/dev/null
else
	"$work/llamacpp-check" models -out "$work/models" ${TOKENIZER:+-tokenizer "$TOKENIZER"} >/dev/null
fi

# llama_ppl FILE [PRELOAD]: llama-perplexity's final estimate. Logs verbosely
# (-lv 4: the model metadata that llama-cli would print) to WORK/NAME.log.
llama_ppl() {
	local log="$work/$(basename "$1" .gguf)${2:+-relu2}.log" rc=0
	if [[ -n ${2:-} ]]; then
		H22_BITNET_RELU2=1 LD_PRELOAD=$2 "$ppl_bin" -m "$1" -f "$text" -c "$ctx" -b "$ctx" -t "$threads" -lv 4 >"$log" 2>&1 || rc=$?
	else
		"$ppl_bin" -m "$1" -f "$text" -c "$ctx" -b "$ctx" -t "$threads" -lv 4 >"$log" 2>&1 || rc=$?
	fi
	if [[ $rc != 0 ]] || ! grep -q 'Final estimate' "$log"; then
		echo "llama-perplexity failed (exit $rc) on $1, see $log" >&2
		return 1
	fi
	sed -n 's/.*Final estimate: PPL = \([0-9.e+]*\).*/\1/p' "$log"
}

# load_report NAME: what llama.cpp said about the file: its type line and
# every warning or error of the stock run.
load_report() {
	local log="$work/$1.log"
	echo "$1: llama.cpp loaded it: $(sed -n 's/.*print_info: file type *= *//p' "$log" | head -n 1);" \
		"$(grep -c 'llama_model_loader: - type' "$log") tensor types; warnings/errors:"
	grep -E '^[0-9.]+ [WE] ' "$log" | sed 's/^/    /' || echo "    none"
}

# compare NAME OURS THEIRS: print both and the mean NLL difference; fail over TOL.
fail=0
compare() {
	local d
	d=$(awk -v a="$2" -v b="$3" 'BEGIN { printf "%.5f", log(a) - log(b) }')
	local verdict=ok
	if awk -v d="$d" -v t="$tol" 'BEGIN { exit !(d > t || d < -t) }'; then verdict=DIFFERS; fi
	printf '%-28s ours %12.4f  llama.cpp %12.4f  dNLL %+.5f  %s\n' "$1" "$2" "$3" "$d" "$verdict"
	[[ $verdict == ok ]] || fail=1
}

relu2="$bin/libh22-bitnet-relu2.so"
for f in "$work"/models/*.gguf; do
	name=$(basename "$f" .gguf)
	if [[ -x $bin/llama-tokenize ]]; then
		"$bin/llama-tokenize" -m "$f" -f "$text" --ids --log-disable --no-bos --no-escape 2>/dev/null | tail -n 1 |
			tr -d '[] ' >"$work/$name.llama-ids"
		"$work/llamacpp-check" ids -model "$f" -text "$text" >"$work/$name.our-ids"
		if cmp -s "$work/$name.llama-ids" "$work/$name.our-ids"; then
			echo "$name: tokenization identical ($(tr ',' '\n' <"$work/$name.llama-ids" | wc -l) tokens)"
		else
			echo "$name: tokenization DIFFERS (see $work/$name.*-ids)"; fail=1
		fi
	fi
	ours=$("$work/llamacpp-check" ppl -model "$f" -text "$text" -ctx "$ctx" -json | sed 's/.*"ppl":\([0-9.e+]*\).*/\1/')
	theirs=$(llama_ppl "$f") || { fail=1; continue; }
	load_report "$name"
	if [[ $name == *noffn* ]]; then
		compare "$name (stock)" "$ours" "$theirs"
	else
		# Stock llama.cpp runs SiLU in the bitnet FFN, BitNet b1.58 2B4T relu2:
		# report, do not judge.
		printf '%-28s ours %12.4f  llama.cpp %12.4f  (SiLU FFN in llama.cpp: not compared)\n' "$name (stock)" "$ours" "$theirs"
		if [[ -f $relu2 ]]; then
			if r=$(llama_ppl "$f" "$relu2"); then compare "$name (relu2 shim)" "$ours" "$r"; else fail=1; fi
		fi
	fi
	all=$("$work/bitnet" perplexity --model "$f" --text "$text" --ctx "$ctx" --head-f32 --json)
	echo "$name: bitnet perplexity (every token of each window): $all"
done
# With the LLaMA 3 tokenizer: llama.cpp's tokenizer, loaded from our file,
# against the committed LLaMA 3 test vectors (needs python3).
if [[ -x $bin/llama-tokenize ]] && command -v python3 >/dev/null &&
	grep -q 'n_vocab *= *128256' "$work/tq2_0.log"; then
	python3 - "$bin/llama-tokenize" "$work/models/tq2_0.gguf" "$work/vec.txt" <<'PY' || fail=1
import gzip, json, subprocess, sys
tok, model, tmp = sys.argv[1:]
bad = n = 0
for v in json.load(gzip.open("testdata/tokenizer/llama3-vectors.json.gz")):
    if not v["text"]:
        continue
    n += 1
    open(tmp, "w").write(v["text"])
    out = subprocess.run([tok, "-m", model, "-f", tmp, "--ids", "--log-disable", "--no-bos", "--no-escape"],
                         capture_output=True, text=True).stdout.strip().splitlines()
    if not out or json.loads(out[-1]) != v["ids"]:
        bad += 1
        print("LLaMA 3 vector differs:", repr(v["text"][:60]))
print(f"LLaMA 3 test vectors through llama-tokenize: {n - bad}/{n} identical")
sys.exit(bad > 0)
PY
fi
exit $fail
