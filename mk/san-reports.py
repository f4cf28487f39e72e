#!/usr/bin/env python3
"""Sorts the sanitizer reports of mk/san-e2e.sh: usage san-reports.py DIR.

Every report in DIR fails the run, except the leaks nginx itself leaves at
exit.  Debian's nginx frees neither a worker's connection and event arrays
(its worker exit destroys the cycle's pool and exits) nor some pools, and
the functions that allocate them are static and stripped from
/usr/sbin/nginx, so mk/lsan.supp cannot name them (a line naming ngx_alloc
or ngx_memalign would hide the module's pool leaks too).  So in the reports
of nginx processes (files nginx.PID; ASan runs there with
fast_unwind_on_malloc=0, nginx having no frame pointers, so that every
stack reaches the code that asked for the memory), a leak whose stack has
no frame of the thinkgate module (nor of unmapped code) is nginx's and is
only counted; a leak with one, and every other report (ASan, UBSan, any
process), is printed and fails the run.  Exit status: 0 when nothing is
left, 1 otherwise.
"""
import os
import re
import sys

# A frame of the module, by name or by its file; "<unknown module>" is code
# unmapped by the time of the report, which in these nginx processes can only
# be a dlclosed module (make test-san-e2e links ours with -z nodelete so
# that its frames keep their names).
OURS = ("ngx_http_thinkgate", "<unknown module>")


def leak_blocks(text):
    """The leak blocks of one LeakSanitizer report: each 'Direct/Indirect
    leak of ...' line with its stack."""
    blocks = []
    for chunk in re.split(r"\n\s*\n", text):
        chunk = chunk.strip("\n")
        if re.match(r"(Direct|Indirect) leak of ", chunk):
            blocks.append(chunk)
    return blocks


def only_leaks(text):
    errors = re.findall(r"==\d+==ERROR: (\w+)", text)
    return errors and all(e == "LeakSanitizer" for e in errors) \
        and "runtime error" not in text


def main(logdir):
    kept = 0
    ignored = ignored_bytes = 0
    for name in sorted(os.listdir(logdir)):
        path = os.path.join(logdir, name)
        with open(path, errors="replace") as f:
            text = f.read()
        if name.startswith("nginx.") and only_leaks(text):
            ours = []
            for b in leak_blocks(text):
                if any(o in b for o in OURS):
                    ours.append(b)
                else:
                    ignored += 1
                    m = re.match(r"\w+ leak of (\d+)", b)
                    ignored_bytes += int(m.group(1)) if m else 0
            if not ours:
                continue
            print("== %s: leaks with a frame of the module" % path)
            for b in ours:
                print("\n".join(b.splitlines()[:40]) + "\n")
            kept += 1
            continue
        print("== %s" % path)
        print("\n".join(text.splitlines()[:60]))
        kept += 1
    if ignored:
        print("san-e2e: %d leak(s) of nginx itself at exit (%d bytes), "
              "no module frame: not counted" % (ignored, ignored_bytes))
    return 1 if kept else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
