"""The ``fastnn`` command."""

import argparse
import sys
import time

import numpy as np

from fastnn._validation import check_lam
from fastnn.backends import available_backends
from fastnn.cost import check_gradients, cost_and_grad
from fastnn.network import init_weights, n_params, pack


def gradcheck(args):
    """Cost and gradient of one random network with every backend, and the gradient check."""
    layers = args.layers
    rng = np.random.default_rng(args.seed)
    thetas = init_weights(layers, seed=rng)
    check_lam(args.lam)
    X = rng.normal(size=(args.m, layers[0]))
    y = rng.integers(0, layers[-1] if layers[-1] > 1 else 2, size=args.m)
    options = {"lam": args.lam, "loss": args.loss, "activation": args.activation}
    print(f"network {'-'.join(map(str, layers))} ({n_params(layers)} weights), m = {args.m}, "
          f"λ = {args.lam}, {args.loss}, {args.activation} hidden units")
    print(f"{'backend':<16}{'J':>22}{'max |∇J - ∇J numpy|':>22}{'gradient check':>16}"
          f"{'time':>10}")
    reference = None
    worst = 0.0
    for backend in available_backends():
        cost_and_grad(thetas, X, y, backend=backend, **options)  # compiled or loaded from cache
        start = time.perf_counter()
        J, grads = cost_and_grad(thetas, X, y, backend=backend, **options)
        elapsed = time.perf_counter() - start
        grad = pack(grads)
        reference = grad if reference is None else reference
        err = check_gradients(thetas, X, y, backend=backend, **options)
        worst = max(worst, err)
        print(f"{backend:<16}{J:>22.16f}{np.abs(grad - reference).max():>22.2e}{err:>16.2e}"
              f"{elapsed * 1e3:>8.1f}ms")
    passed = worst < args.tolerance
    print(f"relative difference ‖num − backprop‖ / ‖num + backprop‖ "
          f"{'<' if passed else '>='} {args.tolerance:g}: {'PASS' if passed else 'FAIL'}")
    return 0 if passed else 1


def build_parser():
    parser = argparse.ArgumentParser(
        prog="fastnn", description="Fully connected networks trained by backpropagation, fast."
    )
    commands = parser.add_subparsers(dest="command", required=True)
    check = commands.add_parser(
        "gradcheck",
        help="compare backpropagation with central differences, for every backend",
        description="Build a random network, compute J and ∇J with every backend, and compare "
        "each gradient with central differences (step 1e-4).",
    )
    check.add_argument("--layers", type=int, nargs="+", default=[3, 5, 3], metavar="S",
                       help="layer sizes s_1 ... s_L (default: 3 5 3)")
    check.add_argument("--m", type=int, default=5, help="number of examples (default: 5)")
    check.add_argument("--lam", type=float, default=1.0, help="λ (default: 1)")
    check.add_argument("--loss", choices=["cross_entropy", "squared_error"],
                       default="cross_entropy")
    check.add_argument("--activation", choices=["sigmoid", "tanh", "relu"], default="sigmoid")
    check.add_argument("--seed", type=int, default=0)
    check.add_argument("--tolerance", type=float, default=1e-7,
                       help="largest relative difference that passes (default: 1e-7; a correct "
                       "float64 gradient gives about 1e-10 on small sigmoid networks)")
    check.set_defaults(run=gradcheck)
    return parser


def main(argv=None):
    args = build_parser().parse_args(argv)
    try:
        return args.run(args)
    except (ValueError, TypeError) as error:
        print(f"fastnn {args.command}: error: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
