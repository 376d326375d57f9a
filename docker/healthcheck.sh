#!/bin/sh
# The image's HEALTHCHECK: picks the check from the role PID 1 runs (`mlops ROLE ...`).
#   serve  -> GET /health/ready (200 when Redis, the broker and the registry answer)
#   worker -> a Celery ping of this container's own node (<pool>@<hostname>)
#   beat   -> `mlops scheduler health` (beat's heartbeat fresh, no job missed or failing)
#   flower -> GET /healthcheck (Flower's open probe)
#   other  -> healthy (one-shot commands such as register-all-models)
set -eu
cmdline=${HEALTHCHECK_CMDLINE:-/proc/1/cmdline}  # another file only to test this script
# shellcheck disable=SC2046 # the words of PID 1's command line, NUL-separated
set -- $(tr '\0' ' ' < "$cmdline")
while [ "$#" -gt 0 ] && [ "${1##*/}" != mlops ]; do shift; done
[ "$#" -gt 0 ] && shift
role=${1:-}
value_of() {  # value_of OPTION DEFAULT: the word after OPTION on PID 1's command line
    wanted=$1 value=$2
    # shellcheck disable=SC2046
    set -- $(tr '\0' ' ' < "$cmdline")
    while [ "$#" -gt 1 ]; do
        if [ "$1" = "$wanted" ]; then value=$2; fi
        shift
    done
    echo "$value"
}
get() {  # exit 0 when http://127.0.0.1:$1$2 answers 200
    python -c "import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=10)" \
        "http://127.0.0.1:$1$2"
}
case $role in
    serve) get "$(value_of --port 9808)" /health/ready ;;
    flower) get "$(value_of --port 5555)" /healthcheck ;;
    worker) exec celery -A mlops_tasks.workers.app inspect ping --timeout 10 \
                --destination "$(value_of --pool all)@$(hostname)" >/dev/null ;;
    beat) exec mlops scheduler health >/dev/null ;;
    *) exit 0 ;;
esac
