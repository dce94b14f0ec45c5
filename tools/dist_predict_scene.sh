#!/usr/bin/env bash
# Map the scenes of a scene list with several processes on one or more
# nodes (torchrun): each process maps its share of the scenes' blocks.
#   bash tools/dist_predict_scene.sh CONFIG CHECKPOINT PROCS \
#       --scenes scenes.csv -o OUT_DIR [predict_scene.py options...]
# Multi-node: NNODES, NODE_RANK, MASTER_ADDR, PORT. Without a GPU the
# processes use the gloo backend on CPU.
CONFIG=$1
CHECKPOINT=$2
PROCS=$3
NNODES=${NNODES:-1}
NODE_RANK=${NODE_RANK:-0}
PORT=${PORT:-29500}
MASTER_ADDR=${MASTER_ADDR:-"127.0.0.1"}
PYTHON=${PYTHON:-python}

PYTHONPATH="$(dirname "$0")/..":$PYTHONPATH \
"$PYTHON" -m torch.distributed.run \
    --nnodes="$NNODES" \
    --node_rank="$NODE_RANK" \
    --master_addr="$MASTER_ADDR" \
    --nproc_per_node="$PROCS" \
    --master_port="$PORT" \
    "$(dirname "$0")/predict_scene.py" \
    "$CONFIG" \
    "$CHECKPOINT" \
    --launcher pytorch "${@:4}"
