# A child that crashes right after its first line.
# usage: sh crash.sh ID
echo "START $1 $$"
echo "CRASH $1 $$"
exit 1
