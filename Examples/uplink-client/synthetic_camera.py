"""A stand-in for a device's JPEG encoder: libturbojpeg (Debian's
libturbojpeg0) through ctypes, encoding a moving test picture at whatever
size and quality the pacer asks for. A real device calls its own encoder
here; the rest of the client does not change."""

import ctypes
import ctypes.util
import os

_TJPF_RGB, _TJSAMP_420 = 0, 2


class SyntheticCamera:
    def __init__(self, width, height, detail=0.5):
        name = ctypes.util.find_library("turbojpeg") or "libturbojpeg.so.0"
        self._tj = ctypes.CDLL(name)
        self._tj.tjInitCompress.restype = ctypes.c_void_p
        self._tj.tjCompress2.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_int,
                                         ctypes.POINTER(ctypes.c_void_p), ctypes.POINTER(ctypes.c_ulong), ctypes.c_int, ctypes.c_int,
                                         ctypes.c_int]
        self._tj.tjFree.argtypes = [ctypes.c_void_p]
        self._tj.tjDestroy.argtypes = [ctypes.c_void_p]
        self._handle = self._tj.tjInitCompress()
        self.width, self.height = width, height
        # Fine detail (noise) in part of the picture, so frames cost what a real scene costs.
        self._noise = os.urandom(width * height * 3)
        self._detail = detail
        self._frame = 0

    def capture(self, width, height, quality):
        """One JPEG of the current picture, `width` × `height`, quality 1–100."""
        self._frame += 1
        row = bytearray(width * 3)
        pixels = bytearray()
        noisy_rows = int(height * self._detail)
        shift = self._frame * 4
        for y in range(height):
            if y < noisy_rows:
                start = (y * width * 3) % (len(self._noise) - width * 3)
                pixels += self._noise[start:start + width * 3]
            else:
                value = (y + shift) % 256
                row[:] = bytes((value, (value * 2) % 256, 255 - value)) * width
                pixels += row
        out, size = ctypes.c_void_p(), ctypes.c_ulong(0)
        if self._tj.tjCompress2(self._handle, bytes(pixels), width, 0, height, _TJPF_RGB, ctypes.byref(out), ctypes.byref(size),
                                _TJSAMP_420, int(quality), 0) != 0:
            raise RuntimeError("libturbojpeg could not encode the test picture")
        try:
            return ctypes.string_at(out, size.value)
        finally:
            self._tj.tjFree(out)

    def close(self):
        self._tj.tjDestroy(self._handle)
