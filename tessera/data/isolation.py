"""The reader child of robust reading: a forked process that decodes samples and sends them back.

Some decoders kill their process (decord calls abort() on some malformed headers); reading in a
child makes that cost one sample. Tensors and arrays cross a socket pair as raw bytes received
straight into their final buffers (pickling a 2.4 MB clip costs ~2 ms; this ~0.5 ms). The child is a
raw `os.fork` (DataLoader workers are daemonic and multiprocessing forbids them children), ignores
SIGINT/SIGTERM, writes no core file and exits when its parent's end of the socket closes.
"""

from __future__ import annotations

import faulthandler
import os
import pickle
import signal
import socket
import struct
import time
import traceback
import weakref
from dataclasses import dataclass
from multiprocessing import util as mp_util
from typing import Any

import numpy as np
import torch


def failure_reason(error: BaseException) -> str:
    """One line saying why: a VideoReadError's own reason, else the type and the first message line."""
    reason = getattr(error, "reason", None)
    if isinstance(reason, str) and reason:
        return reason
    text = str(error).strip()
    first = text.splitlines()[0] if text else ""
    return f"{type(error).__name__}: {first}" if first else type(error).__name__


# --------------------------------------------------------------------------------------------------
# The reader child: framing, sending samples as raw bytes, death and shutdown

_LEN = struct.Struct("<Q")
NOT_SENT = "the reader process was gone before the key was sent"


@dataclass(frozen=True)
class _Buffer:
    """Placeholder for a tensor or array in a sample's header; its bytes follow on the socket."""

    kind: str  # "torch" or "numpy"
    dtype: Any
    shape: tuple[int, ...]
    nbytes: int


def _recv_exact_into(sock: socket.socket, view: memoryview) -> None:
    got, total = 0, len(view)
    while got < total:
        n = sock.recv_into(view[got:], total - got)
        if n == 0:
            raise EOFError("reader process closed its socket")
        got += n


def _send_obj(sock: socket.socket, obj: Any) -> None:
    data = pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
    sock.sendall(_LEN.pack(len(data)) + data)


def _recv_obj(sock: socket.socket) -> Any:
    head = bytearray(_LEN.size)
    _recv_exact_into(sock, memoryview(head))
    data = bytearray(_LEN.unpack(head)[0])
    _recv_exact_into(sock, memoryview(data))
    return pickle.loads(data)


def _flatten(obj: Any, buffers: list[memoryview]) -> Any:
    """Replace tensors and numeric arrays by `_Buffer`s, collecting their bytes in `buffers`."""
    if isinstance(obj, torch.Tensor):
        tensor = obj.detach().cpu().contiguous()
        raw = tensor.reshape(-1).view(torch.uint8).numpy()
        buffers.append(memoryview(raw))
        return _Buffer("torch", tensor.dtype, tuple(tensor.shape), raw.nbytes)
    if isinstance(obj, np.ndarray) and not obj.dtype.hasobject:
        array = np.ascontiguousarray(obj)
        raw = array.reshape(-1).view(np.uint8)
        buffers.append(memoryview(raw))
        return _Buffer("numpy", array.dtype, tuple(array.shape), raw.nbytes)
    if isinstance(obj, dict):
        return {k: _flatten(v, buffers) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_flatten(v, buffers) for v in obj]
    if isinstance(obj, tuple) and type(obj) is tuple:
        return tuple(_flatten(v, buffers) for v in obj)
    return obj


def _fill(obj: Any, sock: socket.socket) -> Any:
    """Rebuild `_flatten`'s structure, receiving each buffer's bytes straight into its new storage."""
    if isinstance(obj, _Buffer):
        if obj.kind == "torch":
            raw = torch.empty(obj.nbytes, dtype=torch.uint8)
            if obj.nbytes:
                _recv_exact_into(sock, memoryview(raw.numpy()))
            return raw.view(obj.dtype).reshape(obj.shape)
        raw = np.empty(obj.nbytes, dtype=np.uint8)
        if obj.nbytes:
            _recv_exact_into(sock, memoryview(raw))
        return raw.view(obj.dtype).reshape(obj.shape)
    if isinstance(obj, dict):
        return {k: _fill(v, sock) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_fill(v, sock) for v in obj]
    if isinstance(obj, tuple) and type(obj) is tuple:
        return tuple(_fill(v, sock) for v in obj)
    return obj


def _child_serve(sock: socket.socket, dataset: Any, errors: tuple[type[BaseException], ...]) -> None:
    """The reader child's loop: a key in, ("ok", header) + buffers / ("bad", reason) / ("raise", error) out."""
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, signal.SIG_IGN)  # shutdown comes from the parent closing the socket
    for sig in (signal.SIGSEGV, signal.SIGBUS, signal.SIGFPE, signal.SIGABRT, signal.SIGCHLD):
        signal.signal(sig, signal.SIG_DFL)  # drop the DataLoader worker's handlers: just die
    if faulthandler.is_enabled():
        faulthandler.disable()  # the parent reports the death; no Python stack dump on stderr
    try:
        import resource

        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))  # an aborting decoder writes no core file
    except (ImportError, ValueError, OSError):
        pass
    torch.set_num_threads(1)
    while True:
        try:
            key = _recv_obj(sock)
        except (EOFError, OSError):
            return  # the parent closed its end or died
        try:
            sample = dataset[key]
        except errors as error:
            _send_obj(sock, ("bad", failure_reason(error)))
            continue
        except BaseException as error:  # a bug, not a bad file: re-raised in the parent
            try:
                payload = pickle.dumps(error)
                pickle.loads(payload)
            except Exception:
                payload = pickle.dumps(RuntimeError("".join(traceback.format_exception(error))))
            _send_obj(sock, ("raise", payload))
            continue
        buffers: list[memoryview] = []
        try:
            header = _flatten(sample, buffers)
            message = pickle.dumps(("ok", header), protocol=pickle.HIGHEST_PROTOCOL)
        except Exception as error:
            _send_obj(sock, ("raise", pickle.dumps(RuntimeError(
                f"the reader process cannot send the sample for key {key!r}: {error!r}"))))
            continue
        sock.sendall(_LEN.pack(len(message)) + message)
        for buffer in buffers:
            if len(buffer):
                sock.sendall(buffer)


def _stop_child(sock: socket.socket, pid: int, owner: int, grace: float = 1.0) -> None:
    """Close the parent's end (the child sees EOF and exits), reap it; SIGKILL if it lingers."""
    try:
        sock.close()
    except OSError:
        pass
    if os.getpid() != owner:  # a forked copy of the owner: not ours to reap
        return
    deadline = time.monotonic() + grace
    while True:
        try:
            done, _ = os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            return
        if done:
            return
        if time.monotonic() > deadline:
            break
        time.sleep(0.002)
    try:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
    except (ProcessLookupError, ChildProcessError):
        pass


def _death_reason(status: int) -> str:
    if os.WIFSIGNALED(status):
        number = os.WTERMSIG(status)
        try:
            name = signal.Signals(number).name
        except ValueError:
            name = "unknown"
        return f"decoder killed its process (signal {number}, {name})"
    if os.WIFEXITED(status):
        return f"decoder process exited unexpectedly with code {os.WEXITSTATUS(status)}"
    return f"decoder process ended unexpectedly (wait status {status})"


_LIVE_READERS: "weakref.WeakSet[ReaderProcess]" = weakref.WeakSet()  # this process's readers


def _forget_readers_after_fork() -> None:
    """In any forked child (a DataLoader worker, a reader child): close the copies of this process's
    reader sockets, so each reader child still sees EOF when its own parent closes or dies, and
    never stop or reap them from here."""
    for reader in list(_LIVE_READERS):
        reader.alive = False
        reader._finalizer.cancel()
        try:
            reader.sock.close()
        except OSError:
            pass
    _LIVE_READERS.clear()


os.register_at_fork(after_in_child=_forget_readers_after_fork)


class ReaderProcess:
    """One forked reader child and the parent's end of its socket pair."""

    def __init__(self, dataset: Any, errors: tuple[type[BaseException], ...]) -> None:
        parent_sock, child_sock = socket.socketpair()
        pid = os.fork()
        if pid == 0:  # the child: never return into the caller's stack
            code = 0
            try:
                parent_sock.close()
                _child_serve(child_sock, dataset, errors)
            except BaseException:
                code = 1
            finally:
                os._exit(code)
        child_sock.close()
        self.sock = parent_sock
        self.pid = pid
        self.owner = os.getpid()
        self.alive = True
        self._finalizer = mp_util.Finalize(self, _stop_child, args=(parent_sock, pid, self.owner), exitpriority=10)
        _LIVE_READERS.add(self)

    def _died(self, timed_out: float | None = None) -> tuple[bool, str]:
        """The child is gone (or hung): reap it and say why."""
        self.alive = False
        self._finalizer.cancel()
        try:
            self.sock.close()
        except OSError:
            pass
        if timed_out is not None:
            try:
                os.kill(self.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        try:
            _, status = os.waitpid(self.pid, 0)
        except ChildProcessError:
            return False, "decoder process vanished"
        if timed_out is not None:
            return False, f"reading took longer than {timed_out:g} s (decoder process killed)"
        return False, _death_reason(status)

    def read(self, key: Any, timeout: float | None) -> tuple[bool, Any]:
        """(True, sample) or (False, reason); raises what the wrapped dataset raised outside `errors`."""
        try:
            self.sock.settimeout(None)
            _send_obj(self.sock, key)
        except OSError:  # it died between reads (killed from outside): not this key's fault
            self._died()
            return False, NOT_SENT
        try:
            self.sock.settimeout(timeout)
            kind, payload = _recv_obj(self.sock)
            if kind == "ok":
                return True, _fill(payload, self.sock)
        except socket.timeout:
            return self._died(timed_out=timeout)
        except (EOFError, OSError):
            return self._died()
        if kind == "bad":
            return False, payload
        raise pickle.loads(payload)

    def close(self) -> None:
        self.alive = False
        self._finalizer()


# --------------------------------------------------------------------------------------------------
# The wrapper
