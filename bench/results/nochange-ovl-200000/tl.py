import json, sys, datetime
p = sys.argv[1]
def ts(s):
    s = s.rstrip('Z'); a, b = s.split('.')
    return datetime.datetime.fromisoformat(a).timestamp() + float('0.' + b)
t0 = sync = first = end = None; listed = ''
for l in open(p + '.log'):
    if not l.startswith('{'): continue
    j = json.loads(l); t = ts(j['time']); m = j['msg']
    if m == 'starting' and t0 is None: t0 = t
    if m == 'sync: first source entry': first = j['after'] / 1e9; sync = t - first
    if m == 'sync: source connected': listed = j.get('walk_listed', '')
    if m == 'sync: apply done': end = t
tm = open(p + '.time').read().split()
print(p.split('/')[-1], 'sync_start=%.3f first=%.3f end=%.3f wall=%s server_maxrss_mib=%.1f walk_listed=%s' % (sync - t0, first, end - t0, tm[0], int(tm[7]) / 1024, listed))
