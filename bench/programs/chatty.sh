# One of many small processes: three lines that carry its pid, then sleep.
# usage: sh chatty.sh ID
echo "READY $1 $$"
echo "LINE $1 $$ 2"
echo "LINE $1 $$ 3"
exec sleep 3600
