#!/bin/sh
# Writes a help2man include (OUT) with a COMMANDS section: the --help of every
# subcommand and sub-subcommand of walvault, as CLI11 prints it, so the man
# page documents each verb's options, not only the top-level list.
#   man-commands.sh WALVAULT OUT
set -eu
bin=$1
out=$2
# The subcommand names under "Subcommands:" of a --help text.
subcommands() {
  sed -n '/^Subcommands:/,$p' | sed -n 's/^  \([a-z][a-z0-9-]*\)  .*/\1/p'
}
# roff: a backslash is \e, a line starting with . or ' is protected.
roff() {
  sed -e 's/\\/\\e/g' -e "s/^\\([.']\\)/\\\\\\&\\1/"
}
section() {
  printf '.SS "walvault %s"\n.nf\n' "$*"
  "$bin" "$@" --help | sed -e '/^Usage:/d' | roff
  printf '.fi\n'
}
{
  printf '[COMMANDS]\n'
  for verb in $("$bin" --help | subcommands); do
    section "$verb"
    for sub in $("$bin" "$verb" --help | subcommands); do
      section "$verb" "$sub"
    done
  done
} >"$out.tmp"
mv "$out.tmp" "$out"
