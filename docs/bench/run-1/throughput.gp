set terminal pngcairo size 900,560 noenhanced font 'DejaVu Sans,10'
set output 'throughput.png'
set title 'Delivered messages per second (default configuration, median)'
set ylabel 'messages/s'
set style data histogram
set style histogram cluster gap 1
set style fill solid 0.8 border -1
set boxwidth 0.9
set xtics rotate by -30
set grid ytics
set key left top
set logscale y
set yrange [0.01:*]
plot 'throughput.dat' using 2:xtic(1) title 'tmqtt', 'throughput.dat' using 3:xtic(1) title 'mosquitto', 'throughput.dat' using 4:xtic(1) title 'tmqtt-wasm'
