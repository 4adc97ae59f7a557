#!/usr/bin/env bash
# Build and run the C order-book harness under AddressSanitizer + UndefinedBehaviorSanitizer.
# First it shows the sanitizers are live: a canary with a heap overflow and one with a signed
# overflow must each be stopped by its sanitizer.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
csrc=$(dirname "$here")
out=${BUILD_DIR:-$(mktemp -d)}
cc=${CC:-cc}
flags=(-std=c11 -g -O1 -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=all
       -Wall -Wextra -Werror -I"$csrc")
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=0:halt_on_error=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1

"$cc" "${flags[@]}" -Wno-error -w -o "$out/canary" "$here/canary.c"
for pair in "asan:ERROR: AddressSanitizer" "ubsan:runtime error"; do
  kind=${pair%%:*} signature=${pair#*:}
  if "$out/canary" "$kind" >"$out/canary.$kind.log" 2>&1 || ! grep -q "$signature" "$out/canary.$kind.log"; then
    echo "sanitizer canary '$kind' was NOT caught: the sanitizers are not active" >&2
    exit 1
  fi
  grep -m1 "$signature" "$out/canary.$kind.log" | sed "s/^/sanitizer canary $kind caught: /"
done

"$cc" "${flags[@]}" -o "$out/test_book" "$here/test_book.c" "$csrc/book.c"
"$out/test_book"
