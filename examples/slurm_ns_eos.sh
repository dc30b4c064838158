#!/bin/bash
# The neutron-star EoS posterior (bayesqcd ns-eos) with NUTS chains spread over the GPUs of
# two nodes: one process per GPU, joined by jax.distributed, which reads the SLURM
# environment (--distributed: cluster auto-detection). Every process runs the same command;
# process 0 alone checks and writes --out. Submit with `sbatch examples/slurm_ns_eos.sh`.
#
# Setup (once, on a login node): python -m venv .venv && .venv/bin/pip install -e ".[cuda]"
# Adapt the partition/account lines to your site. Not tested on a real SLURM cluster.
#SBATCH --job-name=ns-eos
#SBATCH --nodes=2
#SBATCH --ntasks-per-node=4          # one process per GPU
#SBATCH --gpus-per-node=4
#SBATCH --cpus-per-task=8
#SBATCH --time=02:00:00
#SBATCH --output=ns-eos-%j.log
##SBATCH --partition=gpu
##SBATCH --account=myproject

set -euo pipefail
source .venv/bin/activate

# --chains must be a multiple of the devices of all processes (here 2 x 4 = 8 GPUs)
srun bayesqcd ns-eos --distributed --chains 16 --no-progress --out "results/ns-eos-${SLURM_JOB_ID}"

# CPU-only nodes instead: one process per node, each with one CPU device per core, e.g.
#   #SBATCH --ntasks-per-node=1 --cpus-per-task=32 (and no --gpus-per-node)
#   export XLA_FLAGS="--xla_force_host_platform_device_count=${SLURM_CPUS_PER_TASK}"
#   srun bayesqcd ns-eos --distributed --chains 64 --out "results/ns-eos-${SLURM_JOB_ID}"
