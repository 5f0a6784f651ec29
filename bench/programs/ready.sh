# A child that says it is up, then sleeps; the default SIGTERM disposition ends it at once.
# usage: sh ready.sh ID   ($$ is the pid that the supervisor signals: sleep replaces this shell)
echo "READY $1 $$"
exec sleep 3600
