#!/usr/bin/env bash
# jobfleet copy of /work/shared/cluster/sge-check.sh (verified recipe, see docs/sge-notes.md and
# /work/shared/cluster/README.md section 2). Changed for jobfleet: the original check
# "qstat -j shows hold_jid predecessor" also passed with an EMPTY predecessor list (its predecessor
# finishes within a second, before qstat -j runs), so a strict check was added: job "held" waits
# for the long job (-hold_jid), qstat -j must show jid_predecessor_list == that id, and "held" must
# run after the long job is qdel'ed (Grid Engine's "after any" semantics). 13 checks instead of 11.
# sge-check.sh - smoke test of the cluster started by sge-up.sh (run as root).
# qsub (script and -b y), array job -t 1-10 -tc 4, -hold_jid, qdel, qstat -xml, qacct exit codes.
# Prints PASS/FAIL lines; exit status = number of failures.
set -uo pipefail
exec </dev/null
export SGE_ROOT=/var/lib/gridengine SGE_CELL=default
WORK=$(mktemp -d /tmp/sge-check.XXXXXX); cd "$WORK"
fails=0
ok()  { echo "PASS $*"; }
bad() { echo "FAIL $*"; fails=$((fails+1)); }
check() { local what=$1; shift; if "$@"; then ok "$what"; else bad "$what"; fi; }
is_uint() { [[ "$1" =~ ^[0-9]+$ ]]; }
match() { [[ "$1" == $2 ]]; }
in_qstat() { [ -n "$(qstat -u '*' | awk -v j="$1" '$1==j')" ]; }
wait_gone() { local end=$(( $(date +%s) + ${2:-120} )); while in_qstat "$1"; do
    [ "$(date +%s)" -lt "$end" ] || return 1; sleep 0.5; done; }
acct() { qacct -j "$1" 2>/dev/null | awk -v k="$2" '$1==k {print $2}' | tr '\n' ' ' | sed 's/ $//'; }

printf '#!/bin/bash\n#$ -N scripted\n#$ -cwd\necho "hello from $(hostname) job $JOB_ID"\n' > job.sh
j_ok=$(qsub -terse job.sh)
check "qsub -terse returns a bare id ($j_ok)" is_uint "$j_ok"
# -b y with a command string containing spaces needs -N (derived name would contain a space)
j_fail=$(qsub -terse -cwd -b y -N failing 'echo about to fail; exit 3')
j_long=$(qsub -terse -cwd -b y -N long sleep 600)
j_dep=$(qsub -terse -cwd -b y -N dep -hold_jid "$j_ok" echo dep ran)
j_held=$(qsub -terse -cwd -b y -N held -hold_jid "$j_long" echo held ran)
j_arr=$(qsub -terse -cwd -b y -N arr -t 1-10 -tc 4 -o 'arr.$TASK_ID.out' -j y 'echo task $SGE_TASK_ID')
j_arr=${j_arr%%.*}
check "array qsub -terse returns <id>.1-10:1" is_uint "$j_arr"

sleep 1
x=$(qstat -xml -u '*')
check "qstat -xml parses and lists array job" python3 -c "
import sys, xml.etree.ElementTree as ET
r = ET.fromstring(sys.argv[1])
ids = [e.findtext('JB_job_number') for e in r.iter('job_list')]
sys.exit(0 if '$j_arr' in ids else 1)" "$x"
hold=$(qstat -j "$j_dep" 2>/dev/null | awk '/^jid_predecessor_list:/{print $2}')
check "qstat -j shows hold_jid predecessor ($hold)" [ "$hold" = "$j_ok" -o -z "$hold" ]
hold=$(qstat -j "$j_held" 2>/dev/null | awk '/^jid_predecessor_list:/{print $2}')
check "qstat -j of job held by a running job shows it ($hold)" [ "$hold" = "$j_long" ]

qdel "$j_long" >/dev/null
for j in "$j_ok" "$j_fail" "$j_long" "$j_dep" "$j_held" "$j_arr"; do wait_gone "$j" || bad "job $j did not finish"; done
check "script job output" grep -q "hello from" scripted.o"$j_ok"
check "array produced 10 outputs" [ "$(ls arr.*.out 2>/dev/null | wc -l)" -eq 10 ]
check "dependent job ran" grep -q "dep ran" dep.o"$j_dep"
check "job held by a qdel'ed job ran (after any)" grep -q "held ran" held.o"$j_held"
e=$(acct "$j_ok" exit_status);   check "qacct exit_status ok job = 0 ($e)" [ "$e" = 0 ]
e=$(acct "$j_fail" exit_status); check "qacct exit_status failing job = 3 ($e)" [ "$e" = 3 ]
e=$(acct "$j_long" exit_status); f=$(acct "$j_long" failed)
check "qacct of qdel'ed job: exit_status 137, failed 100 ($e/$f)" [ "$e" = 137 -a "$f" = 100 ]
n=$(qacct -j "$j_arr" 2>/dev/null | grep -c '^taskid')
check "qacct lists 10 array tasks ($n)" [ "$n" -eq 10 ]
cd /; rm -rf "$WORK"
echo "sge-check: $fails failure(s)"
exit $fails
