"""serve's processes run on uvloop's event loop (gateway/core/eventloop.py)."""

import asyncio
import os
import signal

import uvloop

from gateway.core import eventloop


def test_run_gives_the_coroutine_a_uvloop_loop_and_its_result():
    async def which_loop():
        await asyncio.sleep(0)
        return type(asyncio.get_running_loop())

    assert eventloop.run(which_loop()) is uvloop.Loop


def test_a_signal_handler_set_on_the_loop_runs_as_serve_worker_sets_it():
    # serve_worker stops on SIGTERM through loop.add_signal_handler.
    async def until_signalled():
        stopped = asyncio.Event()
        asyncio.get_running_loop().add_signal_handler(signal.SIGUSR1, stopped.set)
        os.kill(os.getpid(), signal.SIGUSR1)
        await asyncio.wait_for(stopped.wait(), 5)
        return True

    assert eventloop.run(until_signalled())
