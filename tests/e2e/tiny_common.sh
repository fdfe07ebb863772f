# Shared by the e2e scripts that train configs/tiny.ini under mpirun (zero.sh, precision.sh):
#   source tiny_common.sh VTB_BINARY SOURCE_DIR WORK_DIR
# makes WORK_DIR afresh with a small synthetic corpus in it and defines fail and tiny.
vtb=$1 src=$2 work=$3
rm -rf "$work" && mkdir -p "$work" && cd "$work" || exit 1
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
"$vtb" data synth --scale 0.1 >/dev/null || { echo "FAIL: data synth"; exit 1; }
fail() { echo "FAIL: $*"; for f in "$work"/*.log; do echo "---- $f"; tail -8 "$f" | cut -c1-300; done; exit 1; }
# tiny NP DIR [ARGS...]: `vtb train` on NP ranks into run folder DIR, appending to DIR.log.
tiny() {
  local np=$1 dir=$2; shift 2
  mpirun -np "$np" --oversubscribe --bind-to none "$vtb" train --config "$src/configs/tiny.ini" --run.dir "$dir" \
    --run.threads=1 --log.level=info "$@" >>"$dir.log" 2>&1
}
