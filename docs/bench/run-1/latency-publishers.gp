set terminal pngcairo size 900,560 noenhanced font 'DejaVu Sans,10'
set output 'latency-publishers.png'
set title 'Latency vs publishers (25 subscribers, 5 msg/s each)'
set xlabel 'publishers'
set ylabel 'end-to-end latency (ms)'
set logscale y
set logscale x 2
set grid
set key left top
plot 'latency-publishers.dat' index 0 with linespoints lw 2 dt 1 title 'tmqtt p50', \
  'latency-publishers.dat' index 1 with linespoints lw 2 dt 2 title 'tmqtt p99', \
  'latency-publishers.dat' index 2 with linespoints lw 2 dt 1 title 'mosquitto p50', \
  'latency-publishers.dat' index 3 with linespoints lw 2 dt 2 title 'mosquitto p99', \
  'latency-publishers.dat' index 4 with linespoints lw 2 dt 1 title 'tmqtt-wasm p50', \
  'latency-publishers.dat' index 5 with linespoints lw 2 dt 2 title 'tmqtt-wasm p99'
