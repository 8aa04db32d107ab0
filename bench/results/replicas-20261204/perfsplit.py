#!/usr/bin/env python3
"""Split a system-wide `perf record -a -g` of one fan-out (perfrec.sh) by
process name, and each process's samples into user code, page faults and
system calls.

    perf script -i PERF.DATA -F comm,ip,sym > stacks.txt
    python3 perfsplit.py stacks.txt
"""
import collections
import sys


def samples(path):
    cur = None
    for line in open(path):
        if not line.strip():
            if cur:
                yield cur
            cur = None
        elif not line.startswith((' ', '\t')):
            cur = (line.split()[0], [])
        elif cur:
            parts = line.split(None, 1)
            if len(parts) > 1:
                cur[1].append(parts[1].strip())
    if cur:
        yield cur


def kind(stack):
    if any('exc_page_fault' in f for f in stack):
        return 'page fault'
    calls = [f for f in stack if f.startswith(('__x64_sys_', '__do_sys_'))]
    if calls:
        return calls[0].split('+')[0]
    if any('do_syscall_64' in f for f in stack):
        return 'system call (other)'
    return 'user code, interrupts'


by = collections.defaultdict(collections.Counter)
total = 0
for comm, stack in samples(sys.argv[1]):
    by[comm][kind(stack)] += 1
    total += 1
for comm, c in sorted(by.items(), key=lambda kv: -sum(kv[1].values())):
    n = sum(c.values())
    if n < total / 100:
        continue
    print('%-10s %5.1f%% of all samples' % (comm, 100 * n / total))
    for k, v in c.most_common(6):
        print('    %5.1f%%  %s' % (100 * v / n, k))
