# yum plugin (EL7 and older): after every transaction, ask systemd to push
# the golden tree's changes to the image servers (goldsync-agent-push.service).
# Install: cp goldsync.py /usr/lib/yum-plugins/ ; cp goldsync.conf /etc/yum/pluginconf.d/
import os
import subprocess

from yum.plugins import TYPE_CORE

requires_api_version = '2.3'
plugin_type = (TYPE_CORE,)


def posttrans_hook(conduit):
    try:
        if not os.path.isdir('/run/goldsync'):
            os.makedirs('/run/goldsync')
        open('/run/goldsync/push-needed', 'a').close()
    except OSError as e:
        conduit.info(2, 'goldsync: cannot mark the push: %s' % e)
        return
    # The path unit reacts to the flag; start it directly too in case the
    # path unit is not enabled.
    subprocess.call(['systemctl', 'start', '--no-block', 'goldsync-agent-push.service'])
