#!/bin/bash
# Data-parallel MNIST training with MPI under Slurm (lesson 10).
#
# Runs train_mnist_parallel.py, the training program of lesson 10 (section 5): every rank holds
# the whole model, trains on its slice of each global batch of 256, and the ranks all-reduce
# their gradients (course.parallel.fit). Rank 0 writes history.json with per-epoch times.
#
# train_mnist_parallel.py is written by the lesson; save it next to this file by running, in
# lessons/10_data_parallel.ipynb after section 5:
#     Path("train_mnist_parallel.py").write_text(TRAIN_SCRIPT)
# Then copy both files to the cluster and submit from that folder:
#     sbatch slurm_data_parallel.sh
#
# The cluster needs the course installed with its MPI extra (pip install -e ".[mpi]"), or
# mpi4py built against the cluster's own MPI library (better: it knows the fast interconnect),
# and MNIST where COURSE_DATA_DIR points.

#SBATCH --job-name=dp-mnist
#SBATCH --nodes=2                 # machines
#SBATCH --ntasks-per-node=4       # MPI ranks per machine: 8 ranks in all
#SBATCH --cpus-per-task=1         # cores per rank (one BLAS thread each, below)
#SBATCH --time=00:10:00           # wall-clock limit, hh:mm:ss
#SBATCH --output=dp-mnist-%j.out  # %j is the job id

# One BLAS thread per rank, so that ranks do not fight over cores.
export OMP_NUM_THREADS=${SLURM_CPUS_PER_TASK:-1}
export OPENBLAS_NUM_THREADS=$OMP_NUM_THREADS
export MKL_NUM_THREADS=$OMP_NUM_THREADS
# export COURSE_DATA_DIR=$HOME/data/mnist   # where the MNIST files are

# srun starts nodes x ntasks-per-node ranks on the cores Slurm gave the job; each learns its
# rank and the number of ranks from Slurm (PMI). Arguments: training images, epochs, output file.
srun python train_mnist_parallel.py 60000 3 history.json
