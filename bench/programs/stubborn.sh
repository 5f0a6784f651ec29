# A child that ignores SIGTERM (the ignored disposition survives exec): only SIGKILL ends it.
# usage: sh stubborn.sh ID
trap '' TERM
echo "READY $1 $$"
exec sleep 3600
