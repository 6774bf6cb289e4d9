set terminal pngcairo size 900,560 noenhanced font 'DejaVu Sans,10'
set output 'idle-memory.png'
set title 'Broker memory per idle connection'
set ylabel 'bytes'
set style data histogram
set style histogram cluster gap 1
set style fill solid 0.8 border -1
set boxwidth 0.9
set xtics rotate by -30
set grid ytics
set key left top
set yrange [0:*]
plot 'idle-memory.dat' using 2:xtic(1) title 'tmqtt', 'idle-memory.dat' using 3:xtic(1) title 'mosquitto', 'idle-memory.dat' using 4:xtic(1) title 'tmqtt-wasm'
