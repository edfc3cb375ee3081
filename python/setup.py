"""Builds background._core from the C++ core's sources and the module's, with the compiler that
setuptools finds (g++ on Debian). The CMake build (BACKGROUND_BUILD_PYTHON) is the one the tests
use; this one is for `pip install --no-build-isolation ./python`."""
import glob
import os
import re

from setuptools import Extension, setup

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


def relative(paths):
    return sorted(os.path.relpath(p, HERE) for p in paths)


def version():
    with open(os.path.join(ROOT, "include", "background", "version.hpp")) as f:
        text = f.read()
    parts = [re.search(rf"#define BACKGROUND_VERSION_{k} (\d+)", text).group(1)
             for k in ("MAJOR", "MINOR", "PATCH")]
    return ".".join(parts)


def pybind11_include():
    try:
        import pybind11  # pip's or Debian's python3-pybind11, if there
        return [pybind11.get_include()]
    except ImportError:
        return []  # Debian's pybind11-dev: /usr/include/pybind11, on the default path


core = Extension(
    "background._core",
    sources=relative(glob.glob(os.path.join(ROOT, "src", "*.cpp")) +
                     glob.glob(os.path.join(HERE, "src", "*.cpp"))),
    include_dirs=[os.path.join(ROOT, "include"), os.path.join(ROOT, "src")] + pybind11_include(),
    language="c++",
    extra_compile_args=["-std=c++20", "-O2", "-fvisibility=hidden", "-pthread"],
    extra_link_args=["-pthread"],
)

setup(version=version(), ext_modules=[core])
