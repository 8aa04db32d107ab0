#!/usr/bin/env python3
"""Reads the raw output of the lead's quiet re-runs (bench/README.md) and
prints each pair's ratio and the medians, by build (the run dir's or file's
name after its first dash, less trailing digits: nc-new2 -> new).

  python3 bench/quiet.py nc DIR...        # benchrun -scenarios nochange out dirs: goldsync ÷ rsync
  python3 bench/quiet.py full DIR...      # benchrun -scenarios full out dirs: goldsync ÷ tar floor
  python3 bench/quiet.py replicas FILE... # replicas.sh outputs: all replicas ÷ 1, by update
"""
import collections, csv, os, re, statistics, sys


def build(path):
    name = os.path.basename(path.rstrip('/'))
    name = os.path.splitext(name)[0]
    return name.split('-')[1].rstrip('0123456789') if '-' in name else name


def pairs(d, scenario):
    by = collections.defaultdict(dict)
    for r in csv.DictReader(open(os.path.join(d, 'runs.csv'))):
        if r['scenario'] == scenario and r['mode'] == 'warm':
            by[(r['tree'], r['pair'])][r['tool']] = r
    return sorted(by.items())


def summary(ratios, target):
    for k, v in sorted(ratios.items()):
        print(k, 'n=%d median %.3f  <=%g: %d  %s' % (len(v), statistics.median(v), target,
              sum(1 for r in v if r <= target), ' '.join('%.3f' % r for r in v)))


def against(dirs, scenario, base, line, target):
    """Prints goldsync ÷ base for each pair of the runs in dirs (line formats
    the row from the run's name, tree, pair, goldsync's row, base's row, the
    pair's rows by tool and the ratio), then the medians."""
    ratios = collections.defaultdict(list)
    for d in dirs:
        for (tree, p), x in pairs(d, scenario):
            if 'goldsync' in x and base in x:
                g, o = x['goldsync'], x[base]
                rt = float(g['wall_s']) / float(o['wall_s'])
                ratios[(tree, build(d))].append(rt)
                print(line(os.path.basename(d.rstrip('/')), tree, p, g, o, x, rt))
    summary(ratios, target)


def mib(r, k):
    return int(r[k]) / 2**20


def nc(dirs):
    against(dirs, 'nochange', 'rsync', lambda run, tree, p, g, q, x, rt:
            '%s %s pair %s: gold %ss rsync %ss ÷ %.3f  cpu srv %s gold %s  rss srv %.1f gold %.1f (rsync %.1f / %.1f)  load %s' % (
                run, tree, p, g['wall_s'], q['wall_s'], rt, g['cpu_local_s'], g['cpu_remote_s'],
                mib(g, 'rss_local_tree_bytes'), mib(g, 'rss_remote_tree_bytes'), mib(q, 'rss_local_tree_bytes'), mib(q, 'rss_remote_tree_bytes'), g['load1']), 0.3)


def full(dirs):
    against(dirs, 'full', 'tar-floor', lambda run, tree, p, g, f, x, rt:
            '%s %s pair %s: gold %ss tar %ss rsync %ss ÷tar %.3f  load %s' % (
                run, tree, p, g['wall_s'], f['wall_s'], x.get('rsync', {}).get('wall_s', '-'), rt, g['load1']), 1)


def replicas(files):
    ratios = collections.defaultdict(list)
    for f in files:
        ones, alls, first, catchup, n_all = [], [], True, False, 0
        for line in open(f):
            if line.startswith('-- the others catch up'):
                catchup = True
                continue
            m = re.match(r'goldsync fan-out to (\d+) replicas: ([0-9.]+)s', line)
            if not m:
                continue
            n, t = int(m[1]), float(m[2])
            if catchup:  # the others brought up to date, not timed
                catchup = False
                continue
            if first:  # the first fill, to every replica
                first, n_all = False, n
                continue
            (ones if n == 1 else alls if n == n_all else []).append(t)
        rs = [e / o for o, e in zip(ones, alls)]
        ratios[build(f)] += rs
        print(os.path.basename(f), 'one', ones, 'all %d' % n_all, alls, 'ratios', ' '.join('%.2f' % r for r in rs))
    summary(ratios, 2)


if __name__ == '__main__':
    if len(sys.argv) < 3 or sys.argv[1] not in ('nc', 'full', 'replicas'):
        sys.exit(__doc__)
    globals()[sys.argv[1]](sys.argv[2:])
