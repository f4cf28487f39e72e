"""mk/san-reports.py, which decides which sanitizer reports of
mk/san-e2e.sh fail the run: nginx's own leaks at exit are counted and let
through, a leak with a frame of the module, an ASan error of the module and
any report of another process fail it."""
import os
import subprocess
import sys

import harness

SCRIPT = os.path.join(harness.ROOT, "mk", "san-reports.py")

NGINX_LEAK = """
=================================================================
==7043==ERROR: LeakSanitizer: detected memory leaks

Direct leak of 1024 byte(s) in 1 object(s) allocated from:
    #0 0x7effb50b7ffd in __interceptor_posix_memalign asan_malloc_linux.cpp:145
    #1 0x561968074dd0 in ngx_memalign (/usr/sbin/nginx+0x4cdd0)
    #2 0x562e90dd199b in ngx_create_pool (/usr/sbin/nginx+0x2799b)
    #3 0x562e90dcea00 in main (/usr/sbin/nginx+0x24a00)

Indirect leak of 393216 byte(s) in 1 object(s) allocated from:
    #0 0x7f69390b89cf in __interceptor_malloc asan_malloc_linux.cpp:69
    #1 0x55986da3ecfe in ngx_alloc (/usr/sbin/nginx+0x4ccfe)
    #2 0x55986da42212 in ngx_spawn_process (/usr/sbin/nginx+0x50212)

SUMMARY: AddressSanitizer: 394240 byte(s) leaked in 2 allocation(s).
"""

MODULE_FRAME = """
Direct leak of 64 byte(s) in 1 object(s) allocated from:
    #0 0x7f69390b89cf in __interceptor_malloc asan_malloc_linux.cpp:69
    #1 0x55986da3ecfe in ngx_alloc (/usr/sbin/nginx+0x4ccfe)
    #2 0x7f00000a1234 in ngx_http_thinkgate_init_process \
ngx_module/ngx_http_thinkgate_module.c:321
    #3 0x55986da42212 in ngx_spawn_process (/usr/sbin/nginx+0x50212)
"""

ASAN_ERROR = """
=================================================================
==8123==ERROR: AddressSanitizer: heap-buffer-overflow on address 0x6020
READ of size 1 at 0x602000000011 thread T0
    #0 0x7f00000a1234 in ngx_http_thinkgate_ring_read \
ngx_module/ngx_http_thinkgate_ring.c:88
"""


def run(tmp_path, files):
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    return subprocess.run([sys.executable, SCRIPT, str(tmp_path)],
                          capture_output=True, text=True)


def test_nginx_own_leaks_counted_not_failed(tmp_path):
    p = run(tmp_path, {"nginx.7043": NGINX_LEAK})
    assert p.returncode == 0, p.stdout
    assert "2 leak(s) of nginx itself" in p.stdout
    assert "394240 bytes" in p.stdout


def test_leak_with_a_module_frame_fails(tmp_path):
    p = run(tmp_path, {"nginx.7043": NGINX_LEAK.replace(
        "\nSUMMARY", MODULE_FRAME + "\nSUMMARY")})
    assert p.returncode == 1
    assert "ngx_http_thinkgate_init_process" in p.stdout
    assert "1 leak(s) of nginx itself" not in p.stdout
    assert "2 leak(s) of nginx itself" in p.stdout


def test_leak_from_unmapped_code_fails(tmp_path):
    p = run(tmp_path, {"nginx.7043": NGINX_LEAK.replace(
        "\nSUMMARY", MODULE_FRAME.replace(
            "in ngx_http_thinkgate_init_process \
ngx_module/ngx_http_thinkgate_module.c:321", " (<unknown module>)")
        + "\nSUMMARY")})
    assert p.returncode == 1
    assert "<unknown module>" in p.stdout


def test_asan_error_in_nginx_fails(tmp_path):
    p = run(tmp_path, {"nginx.8123": ASAN_ERROR + NGINX_LEAK})
    assert p.returncode == 1
    assert "heap-buffer-overflow" in p.stdout


def test_leak_of_another_process_fails(tmp_path):
    p = run(tmp_path, {"asan.7043": NGINX_LEAK})
    assert p.returncode == 1
    assert "ngx_memalign" in p.stdout


def test_ubsan_report_fails(tmp_path):
    p = run(tmp_path, {"ubsan.9": "ngx_module/x.c:3:5: runtime error: "
                                  "signed integer overflow\n"})
    assert p.returncode == 1
    assert "runtime error" in p.stdout
