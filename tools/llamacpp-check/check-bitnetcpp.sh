#!/usr/bin/env bash
# check-bitnetcpp.sh: do bitnet.cpp and this project read each other's I2_S
# files and compute the same?
#
#   tools/llamacpp-check/check-bitnetcpp.sh BITNET_BIN [HF_DIR]
#
# BITNET_BIN holds bitnet.cpp's llama-quantize, llama-perplexity and
# llama-cli (built elsewhere: see README.md; this script never fetches or
# builds it). Without HF_DIR the model is random (hidden 256, 2 layers).
# Run from the repository root. Environment: WORK (default
# /tmp/bitnetcpp-check), CTX (128), THREADS (2), TOL (0.01 nats), N (48
# tokens per prompt), UPDATE=1 copies bitnet.cpp's file and outputs into
# shared/model/testdata/bitnetcpp (the golden files the Go tests read).
set -euo pipefail

bin=${1:?usage: check-bitnetcpp.sh BITNET_BIN [HF_DIR]}
hf=${2:-}
work=${WORK:-/tmp/bitnetcpp-check}
ctx=${CTX:-128}
threads=${THREADS:-2}
tol=${TOL:-0.01}
n=${N:-48}
golden=shared/model/testdata/bitnetcpp
prompts=("Light is refracted when it passes" "The colours of thin transparent bodies" "OPTICKS")
mkdir -p "$work"
for b in llama-quantize llama-perplexity llama-cli; do
	[[ -x $bin/$b ]] || { echo "check-bitnetcpp.sh: $bin/$b not found" >&2; exit 2; }
done
tail -c 12000 "$(go env GOROOT)/src/testdata/Isaac.Newton-Opticks.txt" >"$work/eval.txt"
go build -o "$work/llamacpp-check" ./tools/llamacpp-check
tool=$work/llamacpp-check
"$tool" models -bitnetcpp -out "$work" ${hf:+-hf "$hf"} >/dev/null
fail=0

# 1. bitnet.cpp writes I2_S from the F32 file (one thread: with more, its
#    quantizer writes the per-tensor scale at the wrong offsets).
"$bin/llama-quantize" --allow-requantize "$work/f32.gguf" "$work/bitnetcpp-i2_s.gguf" I2_S 1 >"$work/quantize.log" 2>&1
echo "== weights: our I2_S file vs bitnet.cpp's"
"$tool" same -a "$work/i2_s.gguf" -b "$work/bitnetcpp-i2_s.gguf" || fail=1

# 2. Perplexity of both files in bitnet.cpp, and of bitnet.cpp's in ours.
ppl() { "$bin/llama-perplexity" -m "$1" -f "$work/eval.txt" -c "$ctx" -b "$ctx" -t "$threads" >"$2" 2>&1; sed -n 's/.*Final estimate: PPL = \([0-9.e+]*\).*/\1/p' "$2"; }
p_ours=$(ppl "$work/i2_s.gguf" "$work/ppl-ours.log")
p_theirs=$(ppl "$work/bitnetcpp-i2_s.gguf" "$work/ppl-theirs.log")
p_engine=$("$tool" ppl -model "$work/bitnetcpp-i2_s.gguf" -text "$work/eval.txt" -ctx "$ctx" -json | sed -n 's/.*"ppl":\([0-9.e+]*\).*/\1/p')
echo "== perplexity (ctx $ctx): bitnet.cpp on our file $p_ours, on its own $p_theirs; this engine on bitnet.cpp's $p_engine"
awk -v a="$p_ours" -v b="$p_theirs" -v c="$p_engine" -v t="$tol" 'BEGIN {
	d = log(c) - log(b); if (d < 0) d = -d
	if (a != b || d > t) { print "perplexity differs (|dNLL| " d " nats, tolerance " t ")"; exit 1 }
	print "|dNLL| " d " nats <= " t }' || fail=1

# 3. Greedy generation: llama-cli on our file and on bitnet.cpp's, and this
#    engine on bitnet.cpp's, byte for byte (llama-cli ends with a blank line).
for i in "${!prompts[@]}"; do
	p=${prompts[$i]}
	"$bin/llama-cli" -m "$work/i2_s.gguf" -p "$p" -n "$n" --temp 0 --top-k 1 -s 1 -t "$threads" -c 512 --no-display-prompt >"$work/cli-ours-$i.out" 2>"$work/cli-ours-$i.log"
	"$bin/llama-cli" -m "$work/bitnetcpp-i2_s.gguf" -p "$p" -n "$n" --temp 0 --top-k 1 -s 1 -t "$threads" -c 512 --no-display-prompt >"$work/cli-theirs-$i.out" 2>"$work/cli-theirs-$i.log"
	{ "$tool" gen -model "$work/bitnetcpp-i2_s.gguf" -prompt "$p" -n "$n"; printf '\n\n'; } >"$work/gen-$i.out"
	if cmp -s "$work/cli-ours-$i.out" "$work/cli-theirs-$i.out" && cmp -s "$work/gen-$i.out" "$work/cli-theirs-$i.out"; then
		echo "== generation \"$p\": identical ($n tokens)"
	else
		echo "== generation \"$p\": DIFFERS (see $work/cli-*-$i.out, $work/gen-$i.out)"
		fail=1
	fi
done

if [[ ${UPDATE:-} == 1 && $fail == 0 ]]; then
	mkdir -p "$golden"
	cp "$work/bitnetcpp-i2_s.gguf" "$golden/i2_s.gguf"
	{
		printf '{\n  "ctx": %s,\n  "bitnetcpp_ppl": %s,\n  "tokens": %s,\n  "generations": [\n' "$ctx" "$p_theirs" "$n"
		for i in "${!prompts[@]}"; do
			sep=,; [[ $i == $((${#prompts[@]} - 1)) ]] && sep=
			printf '    {"prompt": "%s", "llama_cli_base64": "%s"}%s\n' "${prompts[$i]}" "$(base64 -w0 "$work/cli-theirs-$i.out")" "$sep"
		done
		printf '  ]\n}\n'
	} >"$golden/golden.json"
	echo "updated $golden"
fi
exit $fail
