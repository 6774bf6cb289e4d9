set terminal pngcairo size 900,560 noenhanced font 'DejaVu Sans,10'
set output 'throughput-cpu.png'
set title 'Broker CPU per delivered message (default configuration, median)'
set ylabel 'µs per message'
set style data histogram
set style histogram cluster gap 1
set style fill solid 0.8 border -1
set boxwidth 0.9
set xtics rotate by -30
set grid ytics
set key left top
set logscale y
set yrange [0.01:*]
plot 'throughput-cpu.dat' using 2:xtic(1) title 'tmqtt', 'throughput-cpu.dat' using 3:xtic(1) title 'mosquitto', 'throughput-cpu.dat' using 4:xtic(1) title 'tmqtt-wasm'
