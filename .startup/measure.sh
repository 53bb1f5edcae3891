#!/bin/bash
# usage: measure.sh N args...  -> prints median ms for before and after (interleaved)
N=$1; shift
for i in $(seq 1 $N); do
  for v in before after; do
    s=$(date +%s%N); node .startup/$v/dist/src/cli/main.js "$@" >/dev/null 2>&1; e=$(date +%s%N)
    echo "$v $(( (e-s)/1000000 ))"
  done
done | awk '{a[$1]=a[$1]" "$2} END {for (k in a) print k, a[k]}' | while read v rest; do
  m=$(echo $rest | tr ' ' '\n' | sort -n | awk '{x[NR]=$1} END {print (NR%2? x[(NR+1)/2] : (x[NR/2]+x[NR/2+1])/2)}')
  echo "$v median ${m}ms  [$rest]"
done
